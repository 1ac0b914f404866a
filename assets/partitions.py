"""Partitions of the stage assets: shards, registered models, ablation variants, benchmarks."""

import dagster as dg

from evaluation.demo_benchmarks import BENCHMARKS
from training.ablations import ABLATION_VARIANTS

SHARDS = "shards"
shard_partitions = dg.DynamicPartitionsDefinition(name=SHARDS)

# Registered models (curriculum phases, ablation variants, untrained baselines): a model
# becomes a partition when `assets.evaluation.register_model` stores its export.
MODELS = "models"
model_partitions = dg.DynamicPartitionsDefinition(name=MODELS)

ablation_partitions = dg.StaticPartitionsDefinition(list(ABLATION_VARIANTS))
benchmark_partitions = dg.StaticPartitionsDefinition(list(BENCHMARKS))
benchmark_model_partitions = dg.MultiPartitionsDefinition({"benchmark": benchmark_partitions, "model": model_partitions})
