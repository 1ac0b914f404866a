"""Real-size ReactID transformer on a GPU (random weights; nothing downloaded)."""

from __future__ import annotations

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_wan_1_3b_sized_model_trains_one_step_in_bfloat16():
    from models.losses import reactid_training_loss
    from models.presets import get_preset, reactid_arguments
    from models.transformer_config import cast_keeping_fp32_modules
    from models.transformer_reactid import ReactIDTransformer3DModel

    preset = get_preset("wan2.1-t2v-1.3b")
    with torch.device("cuda"):
        model = ReactIDTransformer3DModel(**preset.transformer, **reactid_arguments(preset))
    cast_keeping_fp32_modules(model, torch.bfloat16)
    model.enable_gradient_checkpointing()
    g = torch.Generator("cuda").manual_seed(0)
    kw = {"device": "cuda", "generator": g}
    # 21 latent frames at 30 x 52 (a 480 x 832, 81-frame clip at reduced spatial size).
    batch = {
        "latents": torch.randn(1, 16, 21, 30, 52, **kw),
        "prompt_embeds": torch.randn(1, 512, 4096, **kw),
        "reference_latents": torch.randn(1, 2, 16, 30, 52, **kw),
        "timeline_embeds": torch.randn(1, 3, 64, 4096, **kw),
        "action_spans": torch.tensor([[[0.0, 8.0], [8.0, 21.0], [0.0, 21.0]]], device="cuda"),
        "action_subjects": torch.tensor([[0, 0, 1]], device="cuda"),
        "subject_masks": (torch.rand(1, 2, 21, 60, 104, **kw) > 0.7).float(),
    }
    loss = reactid_training_loss(model, batch, flow_shift=3.0, generator=g)
    loss.loss.backward()
    assert torch.isfinite(loss.loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
