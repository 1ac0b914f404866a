"""Training objective: focal loss, flow matching, mask resizing and the batch loss."""

from __future__ import annotations

import math

import pytest
import torch

from models.losses import (
    flow_matching_pair,
    reactid_training_loss,
    resize_subject_masks,
    sample_flow_sigmas,
    sigmoid_focal_loss,
)


def _focal_by_hand(logit: float, target: int, alpha: float = 0.25, gamma: float = 2.0) -> float:
    p = 1 / (1 + math.exp(-logit))
    p_t = p if target == 1 else 1 - p
    alpha_t = alpha if target == 1 else 1 - alpha
    return -alpha_t * (1 - p_t) ** gamma * math.log(p_t)


def test_focal_loss_matches_hand_computed_values():
    # logit 0, positive: 0.25 * 0.5^2 * ln 2 = 0.0433217...
    assert sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0])).item() == pytest.approx(
        0.0433216988
    )
    logits, targets = torch.tensor([0.0, 2.0, -1.5, 3.0]), torch.tensor([1.0, 0.0, 0.0, 1.0])
    expected = (
        sum(
            _focal_by_hand(x, int(t))
            for x, t in zip(logits.tolist(), targets.tolist(), strict=True)
        )
        / 4
    )
    assert sigmoid_focal_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    # gamma = 0 and alpha disabled: plain binary cross-entropy.
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0).item() == pytest.approx(
        bce.item(), rel=1e-6
    )
    # Zero weight removes an element from the mean.
    weight = torch.tensor([1.0, 1.0, 0.0, 0.0])
    two = (_focal_by_hand(0.0, 1) + _focal_by_hand(2.0, 0)) / 2
    assert sigmoid_focal_loss(logits, targets, weight=weight).item() == pytest.approx(two, rel=1e-6)


def test_flow_matching_pair_and_shifted_sigmas():
    x0, eps = torch.randn(2, 4, 3, 8, 8), torch.randn(2, 4, 3, 8, 8)
    sigmas = torch.tensor([0.0, 1.0])
    noisy, target = flow_matching_pair(x0, eps, sigmas)
    assert torch.equal(noisy[0], x0[0]) and torch.equal(noisy[1], eps[1])
    assert torch.equal(target, eps - x0)
    u = torch.rand(1000, generator=torch.Generator().manual_seed(5))
    drawn = sample_flow_sigmas(1000, 3.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(drawn, 3 * u / (1 + 2 * u))
    assert sample_flow_sigmas(
        1, 1.0, generator=torch.Generator().manual_seed(5)
    ).item() == pytest.approx(u[0].item())
    with pytest.raises(ValueError, match="flow shift"):
        sample_flow_sigmas(2, 0.0)


def test_masks_are_resized_to_the_token_grid():
    masks = torch.zeros(1, 1, 5, 16, 16)
    masks[..., :8] = 1.0
    resized = resize_subject_masks(masks, (3, 4, 4))
    assert resized.shape == (1, 1, 3, 4, 4)
    assert resized[..., :2].eq(1).all() and resized[..., 2:].eq(0).all()


def test_training_loss_combines_flow_and_weighted_mask_loss(make_model, randomise, make_batch):
    model = make_model()
    randomise(model)
    batch = make_batch()
    batch["noise"] = torch.randn_like(batch["latents"])
    batch["sigmas"] = torch.tensor([0.3, 0.8])
    loss = reactid_training_loss(model, batch, flow_shift=3.0, mask_loss_weight=0.5)
    noisy, target = flow_matching_pair(batch["latents"], batch["noise"], batch["sigmas"])
    kwargs = {
        "timeline_hidden_states": batch["timeline_embeds"],
        "timeline_token_mask": batch["timeline_token_mask"],
        "action_spans": batch["action_spans"],
        "action_subjects": batch["action_subjects"],
    }
    with torch.no_grad():
        out = model(
            noisy,
            batch["sigmas"] * 1000,
            batch["prompt_embeds"],
            batch["reference_latents"],
            batch["reference_mask"],
            **kwargs,
        )
    torch.testing.assert_close(loss.flow, torch.nn.functional.mse_loss(out.sample, target))
    targets = resize_subject_masks(batch["subject_masks"], (3, 4, 4))
    weight = batch["reference_mask"].float().view(2, 2, 1, 1, 1)
    torch.testing.assert_close(
        loss.mask, sigmoid_focal_loss(out.subject_mask_logits, targets, weight=weight)
    )
    torch.testing.assert_close(loss.loss, loss.flow + 0.5 * loss.mask)

    # The padded reference slot of sample 1 does not count.
    batch["subject_masks"][1, 1] = 1.0 - batch["subject_masks"][1, 1]
    again = reactid_training_loss(model, batch, flow_shift=3.0, mask_loss_weight=0.5)
    torch.testing.assert_close(again.mask, loss.mask)


def test_training_loss_rejects_unknown_keys_and_ignores_timeline_for_base(make_model, make_batch):
    batch = make_batch()
    with pytest.raises(KeyError, match="unknown \\['video'\\]"):
        reactid_training_loss(make_model(), {**batch, "video": batch["latents"]}, flow_shift=3.0)
    base = reactid_training_loss(
        make_model("base"), batch, flow_shift=3.0, generator=torch.Generator().manual_seed(0)
    )
    assert base.mask is None and torch.equal(base.loss, base.flow)
    no_refs = {k: v for k, v in batch.items() if not k.startswith("reference")}
    with pytest.raises(ValueError, match="no reference_latents"):
        reactid_training_loss(make_model(), no_refs, flow_shift=3.0)
