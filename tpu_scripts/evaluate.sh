#!/usr/bin/env bash
# Evaluates the latest checkpoint in MODEL_DIR on the validation data of CONFIG_FILE
# (single 224x224 centre crop for ImageNet, Section 4). Metrics are logged and
# written to MODEL_DIR/validation (TensorBoard).
#
#   TPU=my-tpu MODEL_DIR=gs://my-bucket/runs/gsa_resnet50 \
#     DATA_DIR=gs://my-bucket/imagenet tpu_scripts/evaluate.sh

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CONFIG_FILE="${CONFIG_FILE:-official_configs/imagenet/gsa_resnet50_tpu.yaml}"

usage() {
  cat <<USAGE
Usage: $0 [--name=value ...]
Evaluates the latest checkpoint in MODEL_DIR with the experiment of CONFIG_FILE
(the same YAML the run was trained with).
${COMMON_USAGE}
USAGE
}

parse_settings "$@"
require MODEL_DIR "the training run whose latest checkpoint is evaluated."
resolve_experiment
run_train eval
