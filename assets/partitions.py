"""Partitions shared by the per-shard assets."""

import dagster as dg

SHARDS = "shards"
shard_partitions = dg.DynamicPartitionsDefinition(name=SHARDS)

# Registered models (curriculum phases, ablation variants, untrained baselines): a model
# becomes a partition when `assets.evaluation.register_model` stores its export.
MODELS = "models"
model_partitions = dg.DynamicPartitionsDefinition(name=MODELS)
