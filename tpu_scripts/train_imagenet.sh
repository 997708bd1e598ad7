#!/usr/bin/env bash
# Trains a GSA network on ImageNet (Section 4) with TPUStrategy, or, with TPU unset
# and a CPU config, on this machine.
#
#   TPU=my-tpu MODEL_DIR=gs://my-bucket/runs/gsa_resnet50 \
#     DATA_DIR=gs://my-bucket/imagenet tpu_scripts/train_imagenet.sh
#   MODEL_DIR=/tmp/gsa_digits CONFIG_FILE=official_configs/digits/gsa_resnet26_cpu.yaml \
#     tpu_scripts/train_imagenet.sh     # the small CPU default, no TPU
#
# Started again with the same settings, it resumes from MODEL_DIR's latest checkpoint.

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CONFIG_FILE="${CONFIG_FILE:-official_configs/imagenet/gsa_resnet50_tpu.yaml}"
MODE="${MODE:-train_and_eval}"

usage() {
  cat <<USAGE
Usage: $0 [--name=value ...]
Trains (and evaluates every epoch) the experiment of CONFIG_FILE, by default
GSA-ResNet-50 on ImageNet (official_configs/imagenet/gsa_resnet50_tpu.yaml).
${COMMON_USAGE}
  MODE             Model Garden mode (default: train_and_eval; or train).
USAGE
}

parse_settings "$@"
require MODEL_DIR "where checkpoints and summaries go, e.g. gs://BUCKET/runs/NAME."
resolve_experiment
run_train "${MODE}"
