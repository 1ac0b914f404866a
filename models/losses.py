"""Training objective: Wan's flow matching plus the focal loss on predicted subject masks.

Flow matching (rectified flow, as Wan2.1 trains): for clean latents ``x0`` and noise
``eps``, ``x_sigma = (1 - sigma) * x0 + sigma * eps`` and the transformer predicts the
velocity ``eps - x0`` at timestep ``1000 * sigma``. ``sigma`` is drawn as
``u ~ U(0, 1)`` pushed through the same shift the sampler uses,
``sigma = s * u / (1 + (s - 1) * u)``, so training concentrates where inference spends
its steps. The subject-mask head is supervised with the sigmoid focal loss (Lin et al.,
2017) against ground-truth masks resized to the token grid (paper Sec. 3.3.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

# Keys of the batch dict read by ``reactid_training_loss`` (shapes in its docstring).
REQUIRED_BATCH_KEYS: tuple[str, ...] = ("latents", "prompt_embeds")
OPTIONAL_BATCH_KEYS: tuple[str, ...] = (
    "reference_latents",
    "reference_mask",
    "timeline_embeds",
    "timeline_token_mask",
    "action_spans",
    "action_subjects",
    "subject_masks",
    "noise",
    "sigmas",
)


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean sigmoid focal loss ``-alpha_t (1 - p_t)^gamma log(p_t)``.

    Args:
        logits: any shape.
        targets: same shape, values in ``{0, 1}``.
        alpha: weight of positives (``1 - alpha`` for negatives); negative disables it.
        gamma: focusing exponent.
        weight: broadcastable to ``logits``; 0 excludes an element from the mean.

    Returns:
        Scalar: weighted mean over elements.
    """
    logits, targets = logits.float(), targets.float()
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    if weight is None:
        return loss.mean()
    weight = weight.float().expand_as(loss)
    return (loss * weight).sum() / weight.sum().clamp_min(1.0)


def resize_subject_masks(
    masks: torch.Tensor, grid: tuple[int, int, int], threshold: float = 0.5
) -> torch.Tensor:
    """Ground-truth masks at any resolution to binary masks on the token grid.

    Args:
        masks: ``(B, K, F_m, H_m, W_m)`` in ``[0, 1]``.
        grid: ``(F', H', W')`` token grid of the transformer.

    Returns:
        ``(B, K, F', H', W')`` float in ``{0, 1}``: a token is inside when the area-averaged
        mask over its footprint is at least ``threshold``.
    """
    if masks.ndim != 5:
        raise ValueError(f"subject_masks must be (B, K, F, H, W), got {tuple(masks.shape)}")
    batch, subjects = masks.shape[:2]
    pooled = F.adaptive_avg_pool3d(masks.float().flatten(0, 1), grid).unflatten(
        0, (batch, subjects)
    )
    return (pooled >= threshold).float()


def sample_flow_sigmas(
    batch_size: int, shift: float, *, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """``(B,)`` noise levels ``sigma = s u / (1 + (s - 1) u)``, ``u ~ U(0, 1)``."""
    if shift <= 0:
        raise ValueError(f"flow shift must be positive, got {shift}")
    u = torch.rand(batch_size, generator=generator, device=device)
    return shift * u / (1 + (shift - 1) * u)


def flow_matching_pair(
    latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy input ``(1 - sigma) x0 + sigma eps`` and velocity target ``eps - x0``.

    Args:
        latents, noise: ``(B, C, F, H, W)``.
        sigmas: ``(B,)``.
    """
    s = sigmas.view(-1, *([1] * (latents.ndim - 1))).to(latents.dtype)
    return (1 - s) * latents + s * noise, noise - latents


@dataclass(frozen=True)
class TrainingLoss:
    """Total loss and its parts (``mask`` is None when no mask supervision applied)."""

    loss: torch.Tensor
    flow: torch.Tensor
    mask: torch.Tensor | None
    sigmas: torch.Tensor


def reactid_training_loss(
    model: Any,
    batch: dict[str, torch.Tensor],
    *,
    flow_shift: float,
    mask_loss_weight: float = 1.0,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
    num_train_timesteps: int = 1000,
    generator: torch.Generator | None = None,
) -> TrainingLoss:
    """Flow-matching loss plus the weighted focal mask loss for one batch.

    Batch keys (``B`` samples, ``K`` reference slots, ``M`` sub-action slots):

    - ``latents`` ``(B, C, F, H, W)``: clean, normalised VAE latents of the video.
    - ``prompt_embeds`` ``(B, L, text_dim)``: global-prompt embeddings (zero-padded).
    - ``reference_latents`` ``(B, K, C, h, w)``, optional: normalised latents of one
      reference image per subject; ``reference_mask`` ``(B, K)`` bool marks real slots.
    - ``timeline_embeds`` ``(B, M, L_a, text_dim)``, optional, with
      ``timeline_token_mask`` ``(B, M, L_a)`` bool, ``action_spans`` ``(B, M, 2)`` float
      (latent frames, ``models.timeline_conditioning``) and ``action_subjects`` ``(B, M)``
      long (reference index, -1 unbound). Ignored by a model without timeline modules
      (the "base" variant reads the timeline through its prompt).
    - ``subject_masks`` ``(B, K, F_m, H_m, W_m)`` float, optional: ground-truth masks at
      any resolution; needs references and timeline modules.
    - ``noise`` ``(B, C, F, H, W)`` and ``sigmas`` ``(B,)``, optional: fix the draw.

    Returns:
        ``TrainingLoss`` with ``loss = flow + mask_loss_weight * mask``.
    """
    missing = [key for key in REQUIRED_BATCH_KEYS if key not in batch]
    unknown = sorted(set(batch) - set(REQUIRED_BATCH_KEYS) - set(OPTIONAL_BATCH_KEYS))
    if missing or unknown:
        raise KeyError(f"training batch: missing {missing}, unknown {unknown}")
    latents = batch["latents"]
    noise = batch.get("noise")
    if noise is None:
        noise = torch.randn(
            latents.shape, generator=generator, device=latents.device, dtype=latents.dtype
        )
    sigmas = batch.get("sigmas")
    if sigmas is None:
        sigmas = sample_flow_sigmas(
            latents.shape[0], flow_shift, generator=generator, device=latents.device
        )
    noisy, target = flow_matching_pair(latents, noise, sigmas)

    timeline_kwargs = {}
    if model.config.use_timeline_modules and "timeline_embeds" in batch:
        timeline_kwargs = {
            "timeline_hidden_states": _maybe_to(batch["timeline_embeds"], model.dtype),
            "timeline_token_mask": batch.get("timeline_token_mask"),
            "action_spans": batch.get("action_spans"),
            "action_subjects": batch.get("action_subjects"),
        }
    output = model(
        hidden_states=noisy.to(model.dtype),
        timestep=sigmas * num_train_timesteps,
        encoder_hidden_states=batch["prompt_embeds"].to(model.dtype),
        reference_latents=_maybe_to(batch.get("reference_latents"), model.dtype),
        reference_mask=batch.get("reference_mask"),
        **timeline_kwargs,
    )
    flow = F.mse_loss(output.sample.float(), target.float())

    mask = None
    if "subject_masks" in batch and model.config.use_timeline_modules:
        logits = output.subject_mask_logits
        if logits is None:
            raise ValueError(
                "subject_masks given but the model predicted none: "
                "the batch has no reference_latents"
            )
        targets = resize_subject_masks(batch["subject_masks"], tuple(logits.shape[2:]))
        reference_mask = batch.get("reference_mask")
        weight = (
            None
            if reference_mask is None
            else reference_mask.float().view(*reference_mask.shape, 1, 1, 1)
        )
        mask = sigmoid_focal_loss(
            logits, targets, alpha=focal_alpha, gamma=focal_gamma, weight=weight
        )
    total = flow if mask is None else flow + mask_loss_weight * mask
    return TrainingLoss(loss=total, flow=flow, mask=mask, sigmas=sigmas)


def _maybe_to(tensor: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(dtype)
