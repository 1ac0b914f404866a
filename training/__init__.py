"""Training: difficulty-aware curriculum (issue 4) and DeepSpeed phases (issue 6)."""
