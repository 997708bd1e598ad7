#!/usr/bin/env bash
# Exports a trained checkpoint as a SavedModel for serving, via gsa_keras.export
# (the serving issue; this script fails clearly until that module exists).
#
#   CHECKPOINT=gs://my-bucket/runs/gsa_resnet50 EXPORT_DIR=gs://my-bucket/export/gsa50 \
#     tpu_scripts/export.sh

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CONFIG_FILE="${CONFIG_FILE:-official_configs/imagenet/gsa_resnet50_tpu.yaml}"

usage() {
  cat <<USAGE
Usage: $0 [--name=value ...]
Exports CHECKPOINT, trained with the experiment of CONFIG_FILE, to EXPORT_DIR.
Settings (environment variable, or the flag --lower_case_name=VALUE):
  CHECKPOINT       A run's MODEL_DIR (its latest checkpoint) or a checkpoint path
                   (required).
  EXPORT_DIR       Where the SavedModel goes (required).
  CONFIG_FILE      The YAML the checkpoint was trained with.
  EXPERIMENT       Registered experiment; default: the YAML's '# Experiment:' line.
  PARAMS_OVERRIDE  Extra Model Garden overrides.
  PYTHON           Python interpreter (default: python3).
Other arguments are passed to 'python -m gsa_keras.export'.
USAGE
}

parse_settings "$@"
require CHECKPOINT "the run's MODEL_DIR or a checkpoint to export."
require EXPORT_DIR "where to write the SavedModel."
resolve_experiment
if ! PYTHONPATH="${GSA_REPO_DIR}${PYTHONPATH:+:${PYTHONPATH}}" \
    "${PYTHON}" -c "import gsa_keras.export" 2>/dev/null; then
  die "gsa_keras.export is not importable, so nothing can be exported yet (it comes with the serving issue); check that gsa_keras is installed with ${PYTHON}."
fi
args=(-m gsa_keras.export "--experiment=${EXPERIMENT}" "--config_file=${CONFIG_FILE}"
      "--checkpoint_path=${CHECKPOINT}" "--export_dir=${EXPORT_DIR}")
[[ -n "${PARAMS_OVERRIDE:-}" ]] && args+=("--params_override=${PARAMS_OVERRIDE}")
run_python "${args[@]}" "${EXTRA_ARGS[@]}"
