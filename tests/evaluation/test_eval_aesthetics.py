import numpy as np
import pytest

from evaluation.metrics import build_metric
from curation.aesthetic import build_aesthetic_mlp
from evaluation.metrics.aesthetics import AestheticScorer
from evaluation.metrics.base import SampleContext


@pytest.fixture(scope="module")
def tiny_aesthetic_dir(tmp_path_factory):
    """A random tiny CLIP image tower + processor + matching MLP, saved like the real ones."""
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    root = tmp_path_factory.mktemp("aesthetic")
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    clip = CLIPVisionModelWithProjection(config).eval()
    clip.save_pretrained(root / "clip")
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(root / "clip")
    mlp = build_aesthetic_mlp(16).eval()
    torch.save(mlp.state_dict(), root / "aesthetic-model.pth")
    return root, clip, mlp


def test_mlp_layout_matches_the_laion_head():
    mlp = build_aesthetic_mlp(768)
    shapes = {k: tuple(v.shape) for k, v in mlp.state_dict().items() if k.endswith("weight")}
    assert shapes == {
        "layers.0.weight": (1024, 768),
        "layers.2.weight": (128, 1024),
        "layers.4.weight": (64, 128),
        "layers.6.weight": (16, 64),
        "layers.7.weight": (1, 16),
    }


def test_tiny_models_load_through_the_real_loader(tiny_aesthetic_dir):
    import torch

    root, clip, mlp = tiny_aesthetic_dir
    scorer = build_metric(
        "aesthetics", mlp_path=root / "aesthetic-model.pth", clip_path=root / "clip", num_frames=4
    )
    frames = np.random.default_rng(0).integers(0, 256, (9, 40, 56, 3), dtype=np.uint8)
    value = scorer(frames, SampleContext())
    assert value.spec.backend == "pretrained" and value.spec.name == "aesthetics"

    # Reference computation: processor -> projected embedding -> L2 norm -> MLP, frames 0,2,5,8
    pixels = scorer.model.processor(images=list(frames[[0, 2, 5, 8]]), return_tensors="pt")[
        "pixel_values"
    ]
    with torch.no_grad():
        embeds = clip(pixel_values=pixels).image_embeds
        expected = mlp(embeds / embeds.norm(dim=-1, keepdim=True)).mean().item()
    assert value.value == pytest.approx(expected, rel=1e-5)


def test_mlp_width_must_match_the_clip_projection(tiny_aesthetic_dir, tmp_path):
    import torch

    root, _, _ = tiny_aesthetic_dir
    torch.save(build_aesthetic_mlp(24).state_dict(), tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="24-d input but the CLIP projection is 16-d"):
        AestheticScorer(tmp_path / "wrong.pth", root / "clip")
    torch.save({"w": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not an aesthetic MLP"):
        AestheticScorer(tmp_path / "other.pth", root / "clip")
