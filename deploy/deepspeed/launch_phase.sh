#!/usr/bin/env bash
# One curriculum phase on several GPU nodes with the DeepSpeed launcher (NCCL), outside a
# Dagster run worker: what a run's curriculum_phase_<k> step does on one machine, spread
# over the nodes of deploy/deepspeed/hostfile. Every rank runs `training.launch`; rank 0
# writes the checkpoint and prints the phase metrics as JSON.
#
#   deploy/deepspeed/launch_phase.sh 1 /shared/runs/main
#   deploy/deepspeed/launch_phase.sh 2 /shared/runs/main   # continues from phase 1's checkpoint
#
# `reactid phase-plan` first writes $OUT/phase_<k>.jsonl: the sample ids of every step of the
# phase, drawn by the curriculum sampler from the materialised schedule (the phase's step
# count is its number of lines). Phase k > 1 starts from START_CHECKPOINT if set, else from
# $OUT/curriculum_phase_<k-1>/checkpoints (an earlier launch of this script), else from the
# checkpoint the curriculum_phase_<k-1> stage recorded.
#
# Needs: the latent cache and the curriculum schedule already materialized (the retraining
# job's earlier steps), storage.backend s3 (or a shared filesystem) so that every node reads
# the same objects, $OUT on a filesystem every node sees, and params training.use_demo: false
# with a GPU preset.
set -euo pipefail
PHASE=${1:?phase number 1-4}
OUT=${2:?shared output folder, e.g. /shared/runs/main}
PARAMS=${PARAMS:-params.yaml}
HOSTFILE=${HOSTFILE:-deploy/deepspeed/hostfile}
MASTER=${MASTER_ADDR:-$(grep -v '^#' "$HOSTFILE" | awk 'NF {print $1; exit}')}
NODES=$(grep -v '^#' "$HOSTFILE" | awk 'NF' | wc -l)
PLAN="$OUT/phase_${PHASE}.jsonl"

PREVIOUS=()
if (( PHASE > 1 )); then PREVIOUS=(--previous-output "$OUT/curriculum_phase_$((PHASE - 1))"); fi
FOUND=$(reactid --params "$PARAMS" phase-plan --phase "$PHASE" --out "$PLAN" "${PREVIOUS[@]}")
START_CHECKPOINT=${START_CHECKPOINT:-$FOUND}
START=()
if [[ -n "$START_CHECKPOINT" ]]; then
  START=(--start-checkpoint "$START_CHECKPOINT")
elif (( PHASE > 1 )); then
  echo "no checkpoint of curriculum_phase_$((PHASE - 1)) found: run it first or set START_CHECKPOINT" >&2
  exit 1
fi
STEPS=$(grep -c . "$PLAN")

deepspeed --hostfile "$HOSTFILE" --num_nodes "$NODES" --num_gpus 8 \
  --master_addr "$MASTER" --master_port "${MASTER_PORT:-29500}" \
  --module training.launch --params "$PARAMS" --phase "curriculum_phase_${PHASE}" \
  --steps "$STEPS" --output "$OUT/curriculum_phase_${PHASE}" "${START[@]}" \
  --data cache --index cache/index.json --schedule "$PLAN"

# Without SSH between nodes, torchrun on each node does the same:
#   torchrun --nnodes $NODES --node_rank $RANK_OF_THIS_NODE --nproc_per_node 8 \
#     --rdzv-backend c10d --rdzv-endpoint $MASTER:29500 -m training.launch --params params.yaml ...
