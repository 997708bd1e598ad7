"""The xdist groups of `tests/conftest.py`: modules that share a session run or the
serving tests' export run on one worker; every other module is a group of its own."""

import types

from tests import conftest

# Not imported here: a module that holds `serving_helpers` joins the serving export's
# group, which `test_this_suites_sharers_are_grouped` checks this module is not in.
SERVING_HELPERS = conftest.serving_helpers


def _item(module, name, fixtures=(), uses_serving_export=False):
  module_object = types.SimpleNamespace(
      serving_helpers=SERVING_HELPERS if uses_serving_export else None)
  return types.SimpleNamespace(nodeid=f"tests/{module}.py::{name}",
                               fixturenames=list(fixtures), module=module_object)


def test_modules_sharing_something_share_a_group():
  items = [
      _item("test_a", "t1", ["readme_run"]), _item("test_a", "t2"),
      _item("test_b", "t1", uses_serving_export=True),
      _item("test_c", "t1", ["tmp_path"]),
      _item("test_d", "t1", ["short_run"]),
      _item("test_e", "t1", uses_serving_export=True),
      _item("test_e", "t2", ["readme_run"]),  # Joins test_a and test_b together.
      _item("test_f", "t1", ["short_run"]),
  ]
  assert conftest.worker_groups(items) == {
      "tests/test_a.py": "tests/test_a.py", "tests/test_b.py": "tests/test_a.py",
      "tests/test_c.py": "tests/test_c.py", "tests/test_d.py": "tests/test_d.py",
      "tests/test_e.py": "tests/test_a.py", "tests/test_f.py": "tests/test_d.py"}


def test_this_suites_sharers_are_grouped(request):
  """On the real collection (when the modules are collected): the README run's and
  the short run's users each on one worker."""
  groups = conftest.worker_groups(request.session.items)
  readme_users = ["tests/test_export.py", "tests/test_export_precision.py",
                  "tests/test_train_e2e.py", "tests/test_serving_limits.py"]
  short_run_users = ["tests/test_applications.py", "tests/test_train_faults.py",
                     "tests/test_visualize.py"]
  for users in (readme_users, short_run_users):
    present = [module for module in users if module in groups]
    assert len({groups[module] for module in present}) <= 1, present
  assert groups["tests/test_suite_groups.py"] == "tests/test_suite_groups.py"
