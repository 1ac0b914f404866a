#!/usr/bin/env bash
# One curriculum phase on several GPU nodes with the DeepSpeed launcher (NCCL), outside a
# Dagster run worker: what a run's curriculum_phase_<k> step does on one machine, spread
# over the nodes of deploy/deepspeed/hostfile. Every rank runs `training.launch`; rank 0
# writes the checkpoint and prints the phase metrics as JSON.
#
#   deploy/deepspeed/launch_phase.sh 1 5000 /shared/runs/main
#
# Needs: the latent cache and the curriculum schedule already materialized (the retraining
# job's earlier steps), storage.backend s3 (or a shared filesystem) so that every node reads
# the same objects, and params training.use_demo: false with a GPU preset.
set -euo pipefail
PHASE=${1:?phase number 1-4}
STEPS=${2:?optimizer steps of this phase}
OUT=${3:?shared output folder, e.g. /shared/runs/main}
HOSTFILE=${HOSTFILE:-deploy/deepspeed/hostfile}
MASTER=${MASTER_ADDR:-$(grep -v '^#' "$HOSTFILE" | awk 'NF {print $1; exit}')}
NODES=$(grep -v '^#' "$HOSTFILE" | awk 'NF' | wc -l)
# phases 2-4 continue from the previous phase's checkpoint folder (START_CHECKPOINT=...)
START=()
if [[ -n "${START_CHECKPOINT:-}" ]]; then START=(--start-checkpoint "$START_CHECKPOINT"); fi

deepspeed --hostfile "$HOSTFILE" --num_nodes "$NODES" --num_gpus 8 \
  --master_addr "$MASTER" --master_port "${MASTER_PORT:-29500}" \
  --module training.launch --params params.yaml --phase "curriculum_phase_${PHASE}" \
  --steps "$STEPS" --output "$OUT/curriculum_phase_${PHASE}" "${START[@]}" \
  --data cache --index training/cache_index.json --schedule "$OUT/phase_${PHASE}.jsonl"

# Without SSH between nodes, torchrun on each node does the same:
#   torchrun --nnodes $NODES --node_rank $RANK_OF_THIS_NODE --nproc_per_node 8 \
#     --rdzv-backend c10d --rdzv-endpoint $MASTER:29500 -m training.launch --params params.yaml ...
