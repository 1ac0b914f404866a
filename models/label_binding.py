"""Label binding for the subject-aware cross-attention.

Reading of the paper (Sec. 3.3.2, Sec. 4.3, Table 3)
----------------------------------------------------
Predicted subject masks "associate subject-related video latents and timeline prompts in
cross-attention": video tokens inside subject ``k``'s predicted mask receive a *label
value*, and each sub-action's text tokens carry the label of the subject performing it,
so that the attention binds each sub-action to its subject. Uniform labelling gives every
token of a mask the same value; adaptive labelling scales it by the mask probability
("pixels with higher probability receive larger values"). ``(alpha, beta)`` select the
values; ``(2, 20)`` "exploits more distinct label values for different subjects" than
``(0, 1)`` and is the default. The text describing the exact formula is missing from the
paper; the following is our reading, chosen so that both statements hold.

What this module implements
---------------------------
Subjects are numbered ``k = 1..K`` in reference order; label 0 is the background.

    subject label      l_k  = alpha + beta * k
    video token label  l(v) = l_{k*}              (uniform)
                       l(v) = p_{k*}(v) * l_{k*}   (adaptive)
                       with k* = argmax_k p_k(v) among subjects with p_k(v) > threshold,
                       and l(v) = 0 when no mask contains v
    action label       l(j) = l_{subject(j)}; an action bound to no reference has no label
    attention bias     bias(v, j) = -scale * |l(v) - l(j)|      (0 for unlabelled actions)

``alpha`` separates every subject from the background, ``beta`` separates subjects from
one another. With ``(2, 20)`` a token of subject 1 sees -20 on subject 2's sub-actions
(near-hard binding); with ``(0, 1)`` only -1 (a soft preference). A zero "null" key with
label 0 sits in every row (see ``SubjectAwareCrossAttention``) so that background tokens
can attend to nothing rather than to some subject's action.
"""

from __future__ import annotations

from typing import Literal

import torch

LabelBinding = Literal["uniform", "adaptive", "none"]
LABEL_BINDING_MODES: tuple[str, ...] = ("uniform", "adaptive", "none")


def subject_label_values(num_subjects: int, alpha: float, beta: float, device=None) -> torch.Tensor:
    """``l_k = alpha + beta * k`` for ``k = 1..K``, shape ``(K,)``."""
    k = torch.arange(1, num_subjects + 1, device=device, dtype=torch.float32)
    return alpha + beta * k


def video_token_labels(
    mask_probs: torch.Tensor,
    *,
    strategy: str,
    alpha: float,
    beta: float,
    threshold: float = 0.5,
) -> torch.Tensor:
    """Label value of every video token from predicted subject-mask probabilities.

    Args:
        mask_probs: ``(B, K, N)`` probabilities in ``[0, 1]`` (0 for absent references).
        strategy: ``"uniform"``, ``"adaptive"`` or ``"none"``.

    Returns:
        ``(B, N)`` float32 labels (0 = background).
    """
    if strategy not in LABEL_BINDING_MODES:
        raise ValueError(f"label binding must be one of {LABEL_BINDING_MODES}, got {strategy!r}")
    batch, num_subjects, num_tokens = mask_probs.shape
    if strategy == "none" or num_subjects == 0:
        return mask_probs.new_zeros(batch, num_tokens, dtype=torch.float32)
    probs = mask_probs.float()
    best_prob, best_subject = probs.max(dim=1)  # (B, N)
    inside = best_prob > threshold
    labels = subject_label_values(num_subjects, alpha, beta, probs.device)[best_subject]  # (B, N)
    if strategy == "adaptive":
        labels = labels * best_prob
    return torch.where(inside, labels, torch.zeros_like(labels))


def action_label_values(
    action_subjects: torch.Tensor, *, alpha: float, beta: float
) -> torch.Tensor:
    """Label of each action's subject; NaN marks actions bound to no reference.

    Args:
        action_subjects: ``(B, M)`` long, 0-based reference index, ``-1`` = unbound.

    Returns:
        ``(B, M)`` float32.
    """
    labels = alpha + beta * (action_subjects.float() + 1.0)
    return torch.where(action_subjects >= 0, labels, torch.full_like(labels, float("nan")))


def label_binding_bias(
    video_labels: torch.Tensor, action_labels: torch.Tensor, scale: float
) -> torch.Tensor:
    """Additive attention bias ``-scale * |l(v) - l(j)|``; 0 where the action is unbound.

    Args:
        video_labels: ``(B, N)``.
        action_labels: ``(B, M)``, NaN for unbound actions.

    Returns:
        ``(B, N, M)`` float32.
    """
    distance = (video_labels.unsqueeze(-1) - action_labels.unsqueeze(1)).abs()
    return torch.nan_to_num(-scale * distance, nan=0.0)
