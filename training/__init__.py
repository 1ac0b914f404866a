"""Training: difficulty-aware curriculum and DeepSpeed phases."""
