#!/usr/bin/env bash
# Fine-tunes an ImageNet-pretrained GSA network on CIFAR-100 (Appendix A): restores
# the backbone of INIT_CHECKPOINT, trains a new 100-class head and the backbone.
#
#   TPU=my-tpu MODEL_DIR=gs://my-bucket/runs/gsa_resnet50_cifar100 \
#     INIT_CHECKPOINT=gs://my-bucket/runs/gsa_resnet50 \
#     TFDS_DATA_DIR=gs://my-bucket/tfds tpu_scripts/finetune_cifar100.sh

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CONFIG_FILE="${CONFIG_FILE:-official_configs/cifar100/gsa_resnet50_finetune_tpu.yaml}"

usage() {
  cat <<USAGE
Usage: $0 [--name=value ...]
Fine-tunes the pretrained backbone in INIT_CHECKPOINT with the experiment of
CONFIG_FILE, by default official_configs/cifar100/gsa_resnet50_finetune_tpu.yaml.
${COMMON_USAGE}
  INIT_CHECKPOINT  The pretrained run's MODEL_DIR or one of its checkpoints
                   (required); only the backbone is restored.
USAGE
}

parse_settings "$@"
require MODEL_DIR "where checkpoints and summaries go, e.g. gs://BUCKET/runs/NAME."
require INIT_CHECKPOINT "the ImageNet run (its MODEL_DIR or a checkpoint) to fine-tune."
resolve_experiment
run_train train_and_eval "task.init_checkpoint=${INIT_CHECKPOINT}" \
  "task.init_checkpoint_modules=backbone"
