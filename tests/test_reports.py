"""What the benchmark and study reports share (`reports`), and the imports between
`studies`, `benchmarks` and `reports`.

The studies and the benchmarks never import each other; both import `reports`, which
imports only the standard library. Writing the study's report loads neither the
study's runner, nor the benchmarks, nor TensorFlow.
"""

import ast
import json
import pathlib
import subprocess
import sys
from typing import Dict, Set, Tuple

import pytest

from reports import machine
from reports import tables

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("studies", "benchmarks", "reports")


def test_markdown_table_has_a_header_a_separator_and_a_line_per_row():
  assert tables.markdown(["a", "b"], [[1, "x"], [2.5, None]]) == (
      "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |")
  assert tables.markdown(["only"], []) == "| only |\n|---|"


def test_machine_description_records_the_given_load_average():
  described = machine.describe(1.5)
  assert described["load_average_now"] == 1.5
  assert described["cpu"] == machine.cpu_model()
  assert set(described) == {"cpu", "logical_cores", "usable_cores", "memory_gb",
                            "platform", "python", "date", "load_average_now"}


def _modules_loaded_by(module: str) -> Set[str]:
  """The modules that importing `module` adds, in a fresh interpreter."""
  code = ("import json, sys; before = set(sys.modules); "
          f"import {module}; print(json.dumps(sorted(set(sys.modules) - before)))")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return set(json.loads(result.stdout.splitlines()[-1]))


def _package(module: str) -> str:
  return module.split(".")[0]


def _top_level(modules: Set[str]) -> Set[str]:
  return {_package(name) for name in modules}


def test_the_study_report_loads_neither_the_runner_nor_the_benchmarks_nor_tensorflow():
  loaded = _modules_loaded_by("studies.report")
  assert "studies.report" in loaded
  assert "studies.fashion_mnist" not in loaded
  heavy = _top_level(loaded) & {"benchmarks", "tensorflow", "official", "gsa_keras",
                                 "keras", "tf_keras"}
  assert not heavy, f"importing studies.report loads {sorted(heavy)}"


@pytest.mark.parametrize("module", ["reports.machine", "reports.tables"])
def test_the_shared_modules_load_only_the_standard_library(module):
  loaded = _top_level(_modules_loaded_by(module))
  assert loaded - set(sys.stdlib_module_names) == {"reports"}, (
      f"importing {module} loads {sorted(loaded - set(sys.stdlib_module_names))}")


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(REPO).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path, modules: Set[str]) -> Dict[str, bool]:
  """{module of the repository's `PACKAGES` that `path` imports: whether at the top of
  the file (not inside a function, class or other statement)}."""
  tree = ast.parse(path.read_text(), str(path))
  top = {id(node) for node in tree.body}
  found = {}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from package import module` imports the module, else the package.
      names = [f"{node.module}.{alias.name}"
               if f"{node.module}.{alias.name}" in modules else node.module
               for alias in node.names]
    else:
      continue
    for name in names:
      if _package(name) in PACKAGES:
        found[name] = found.get(name, True) and id(node) in top
  return found


def _graph() -> Tuple[Set[str], Dict[Tuple[str, str], bool]]:
  """The modules of `PACKAGES` and {(importer, imported): at the top of the file}."""
  paths = [p for package in PACKAGES for p in sorted((REPO / package).glob("*.py"))]
  modules = {_module_name(p) for p in paths}
  edges = {}
  for path in paths:
    for imported, at_top in _imports(path, modules).items():
      edges[(_module_name(path), imported)] = at_top
  return modules, edges


def test_studies_and_benchmarks_share_only_through_reports():
  _, edges = _graph()
  assert ("studies.fashion_mnist", "studies.report") in edges
  assert ("studies.report", "reports.tables") in edges
  assert ("benchmarks.report", "reports.tables") in edges
  crossing = [(a, b) for a, b in edges
              if {_package(a), _package(b)} == {"studies", "benchmarks"}]
  assert not crossing, ("studies and benchmarks must not import each other (they "
                        f"share through `reports`): {crossing}")
  from_reports = [(a, b) for a, b in edges
                  if _package(a) == "reports" and _package(b) != "reports"]
  assert not from_reports, from_reports
  inside_functions = [edge for edge, at_top in edges.items() if not at_top]
  assert not inside_functions, (
      "imports between these packages belong at the top of the file: "
      f"{inside_functions}")


def test_the_import_graph_has_no_cycle():
  modules, edges = _graph()
  following = {name: sorted(b for a, b in edges if a == name and b in modules)
               for name in modules}
  state = {}  # name -> "open" while on the path, "done" after.

  def visit(name, path):
    state[name] = "open"
    for other in following[name]:
      if state.get(other) == "open":
        pytest.fail("import cycle: " + " -> ".join(path + [name, other]))
      if other not in state:
        visit(other, path + [name])
    state[name] = "done"

  for name in sorted(modules):
    if name not in state:
      visit(name, [])


def test_the_library_imports_neither_studies_nor_benchmarks_nor_reports():
  for path in sorted((REPO / "gsa_keras").rglob("*.py")):
    assert not _imports(path, set()), path
