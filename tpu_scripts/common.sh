# shellcheck shell=bash
# shellcheck disable=SC2034  # The settings are read by the scripts that source this.
# Shared by the tpu_scripts: settings from environment variables or --flags, checks
# that name a missing setting, and the `python -m gsa_keras.train` command line.
#
# Every setting is an environment variable; the flag of the same name in lower case
# (--model_dir=..., --tpu=...) overrides it. Unknown arguments go to the Python entry
# point unchanged (e.g. --params_override=trainer.train_steps=1000).

set -euo pipefail

GSA_REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
EXTRA_ARGS=()

die() {
  echo "error: $*" >&2
  echo "Run '$0 --help' for usage." >&2
  exit 2
}

# Reads --name=value flags into the matching upper-case variables.
parse_settings() {
  local arg
  for arg in "$@"; do
    case "${arg}" in
      -h | --help) usage; exit 0 ;;
      --tpu=*) TPU="${arg#*=}" ;;
      --model_dir=*) MODEL_DIR="${arg#*=}" ;;
      --data_dir=*) DATA_DIR="${arg#*=}" ;;
      --tfds_data_dir=*) TFDS_DATA_DIR="${arg#*=}" ;;
      --experiment=*) EXPERIMENT="${arg#*=}" ;;
      --config_file=*) CONFIG_FILE="${arg#*=}" ;;
      --init_checkpoint=*) INIT_CHECKPOINT="${arg#*=}" ;;
      --checkpoint=*) CHECKPOINT="${arg#*=}" ;;
      --export_dir=*) EXPORT_DIR="${arg#*=}" ;;
      --params_override=*) PARAMS_OVERRIDE="${arg#*=}" ;;
      *) EXTRA_ARGS+=("${arg}") ;;
    esac
  done
}

# require NAME HINT: dies unless the setting NAME is non-empty.
require() {
  [[ -n "${!1:-}" ]] || die "$1 is not set (environment variable $1 or flag --${1,,}): $2"
}

# Makes CONFIG_FILE absolute (relative to here, else to the repo root), then sets
# EXPERIMENT from its '# Experiment:' line unless EXPERIMENT is set.
resolve_experiment() {
  require CONFIG_FILE "a YAML file from official_configs/."
  if [[ ! -f "${CONFIG_FILE}" && -f "${GSA_REPO_DIR}/${CONFIG_FILE}" ]]; then
    CONFIG_FILE="${GSA_REPO_DIR}/${CONFIG_FILE}"
  fi
  [[ -f "${CONFIG_FILE}" ]] || die "CONFIG_FILE: no such file: ${CONFIG_FILE}"
  CONFIG_FILE="$(cd "$(dirname "${CONFIG_FILE}")" && pwd)/$(basename "${CONFIG_FILE}")"
  if [[ -z "${EXPERIMENT:-}" ]]; then
    EXPERIMENT="$(sed -n 's/^# Experiment: *//p' "${CONFIG_FILE}" | head -n 1)"
    [[ -n "${EXPERIMENT}" ]] ||
      die "EXPERIMENT is not set and ${CONFIG_FILE} has no '# Experiment:' line."
  fi
}

# Prints the --params_override value: data location, then the user's overrides.
params_override() {
  local overrides=()
  if [[ -n "${DATA_DIR:-}" && -n "${TFDS_DATA_DIR:-}" ]]; then
    die "set DATA_DIR (TFRecords) or TFDS_DATA_DIR (TFDS), not both."
  fi
  if [[ -n "${DATA_DIR:-}" ]]; then
    local split pattern
    for split in train validation; do
      if [[ "${split}" == train ]]; then pattern="${TRAIN_PATTERN:-train-*}";
      else pattern="${VALIDATION_PATTERN:-validation-*}"; fi
      overrides+=("task.${split}_data.input_path=${DATA_DIR%/}/${pattern}"
                  "task.${split}_data.tfds_name=''")
    done
  elif [[ -n "${TFDS_DATA_DIR:-}" ]]; then
    overrides+=("task.train_data.tfds_data_dir=${TFDS_DATA_DIR}"
                "task.validation_data.tfds_data_dir=${TFDS_DATA_DIR}")
  fi
  [[ -n "${PARAMS_OVERRIDE:-}" ]] && overrides+=("${PARAMS_OVERRIDE}")
  local IFS=,
  echo "${overrides[*]}"
}

# run_train MODE [OVERRIDE...]: runs the entry point; the TPU comes from TPU.
run_train() {
  local mode="$1"
  shift
  local override
  override="$(params_override)"
  if (($#)); then
    local IFS=,
    override="${override:+${override},}$*"
  fi
  local args=(-m gsa_keras.train "--experiment=${EXPERIMENT}"
              "--config_file=${CONFIG_FILE}" "--mode=${mode}"
              "--model_dir=${MODEL_DIR}")
  [[ -n "${TPU:-}" ]] && args+=("--tpu=${TPU}")
  [[ -n "${override}" ]] && args+=("--params_override=${override}")
  run_python "${args[@]}" "${EXTRA_ARGS[@]}"
}

# run_python ARG...: the interpreter, with this checkout importable.
run_python() {
  echo "+ ${PYTHON} $*" >&2
  PYTHONPATH="${GSA_REPO_DIR}${PYTHONPATH:+:${PYTHONPATH}}" exec "${PYTHON}" "$@"
}

# The settings every script shares, for its usage message.
COMMON_USAGE="Settings (environment variable, or the flag --lower_case_name=VALUE):
  MODEL_DIR        Checkpoints, params.yaml and TensorBoard summaries, e.g.
                   gs://BUCKET/runs/gsa_resnet50 (required).
  TPU              TPU name, or 'local' on a TPU VM. Leave unset to run on this
                   machine's CPU/GPU with a non-TPU config (e.g. the digits default).
  CONFIG_FILE      YAML from official_configs/ (paths are relative to the repo root).
  EXPERIMENT       Registered experiment; default: the YAML's '# Experiment:' line.
  DATA_DIR         TFRecord directory holding train-* and validation-* files
                   (TRAIN_PATTERN / VALIDATION_PATTERN change the names); replaces
                   the YAML's TFDS source.
  TFDS_DATA_DIR    TFDS data_dir holding the YAML's tfds_name (e.g. gs://BUCKET/tfds).
  PARAMS_OVERRIDE  Extra Model Garden overrides, e.g. trainer.train_steps=1000.
  PYTHON           Python interpreter (default: python3).
Other arguments are passed to 'python -m gsa_keras.train'."
