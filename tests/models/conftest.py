"""Tiny inputs shared by the model tests."""

from __future__ import annotations

import pytest
import torch

from models.presets import build_transformer, get_preset

TINY = get_preset("tiny")


def tiny_model(variant: str = "reactid", **overrides):
    return build_transformer("tiny", variant, overrides=overrides, seed=0)


def randomise_zero_projections(model: torch.nn.Module, seed: int = 1) -> None:
    """Give the zero-initialised output projections random weights (a trained model's state)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith("adapters.") and ".to_out." in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


def tiny_batch(batch_size: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch for the tiny preset: 2 subjects, 3 sub-actions, 3 latent frames."""
    g = torch.Generator().manual_seed(seed)
    channels, text_dim = TINY.transformer["in_channels"], TINY.transformer["text_dim"]
    masks = torch.zeros(batch_size, 2, 5, 16, 16)
    masks[:, 0, :, :, :8] = 1.0  # subject 0: left half
    masks[:, 1, :, 8:, 8:] = 1.0  # subject 1: bottom-right quarter
    return {
        "latents": torch.randn(batch_size, channels, 3, 8, 8, generator=g),
        "prompt_embeds": torch.randn(batch_size, 10, text_dim, generator=g),
        "reference_latents": torch.randn(batch_size, 2, channels, 8, 8, generator=g),
        "reference_mask": torch.tensor([[True, True], [True, False]][:batch_size]),
        "timeline_embeds": torch.randn(batch_size, 3, 5, text_dim, generator=g),
        "timeline_token_mask": torch.ones(batch_size, 3, 5, dtype=torch.bool),
        "action_spans": torch.tensor([[[0.0, 1.0], [1.0, 3.0], [0.0, 3.0]]] * batch_size),
        "action_subjects": torch.tensor([[0, 0, 1]] * batch_size),
        "subject_masks": masks,
    }


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return tiny_batch()


@pytest.fixture
def make_model():
    """``make_model(variant="reactid", **overrides)`` builds a tiny ReactID transformer."""
    return tiny_model


@pytest.fixture
def randomise():
    """``randomise(model)`` gives the zero-initialised output projections random weights."""
    return randomise_zero_projections


@pytest.fixture
def make_batch():
    """``make_batch(batch_size=2, seed=0)`` builds a tiny training batch."""
    return tiny_batch


@pytest.fixture(scope="session")
def tiny_preset():
    return TINY
