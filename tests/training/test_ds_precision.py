"""The paper's precision and sharding settings on CPU: bf16 with ZeRO-2, and ZeRO-3 whose
export must gather the partitioned weights into a complete model."""

from __future__ import annotations

import copy

import pytest
import torch

from orchestration.params import parse_params
from training.batches import SyntheticBatchSource
from training.checkpoint import export_model, load_checkpoint, load_exported_model, save_checkpoint
from training.deepspeed_config import deepspeed_config
from training.trainer import LossOptions, build_engine, train_steps

SOURCE = SyntheticBatchSource((4, 2, 4, 4), 32, prompt_tokens=6, action_tokens=3)


@pytest.fixture(autouse=True)
def contained_zero3_patch():
    """One intra-op thread; and undo ZeRO-3's process-wide replacement of F.linear so that
    later tests in this process run the stock function."""
    previous_threads, linear = torch.get_num_threads(), torch.nn.functional.linear
    torch.set_num_threads(1)
    yield
    torch.nn.functional.linear = linear
    torch.set_num_threads(previous_threads)


@pytest.mark.parametrize(("precision", "zero_stage"), [("bf16", 2), ("bf16", 3)])
def test_trains_checkpoints_and_exports_complete_weights(base_params_raw, tmp_path, precision,
                                                         zero_stage):
    from models.presets import build_transformer

    raw = copy.deepcopy(base_params_raw)
    raw["training"].update(use_demo=False, global_batch=2, micro_batch=1, precision=precision,
                           zero_stage=zero_stage, lr=1e-2, warmup_steps=1)
    config = deepspeed_config(parse_params(raw).training, world_size=1)
    engine = build_engine(build_transformer("tiny", seed=0), config)
    batches = (SOURCE([f"s{i}"]) for i in range(100))
    records = train_steps(engine, batches, 3, options=LossOptions(flow_shift=3.0))
    assert all(torch.isfinite(torch.tensor(r.loss)) for r in records)
    save_checkpoint(engine, tmp_path / "ckpt")

    exported = load_exported_model(export_model(engine, tmp_path / "model"))
    initial = dict(build_transformer("tiny", seed=0).named_parameters())
    weights = dict(exported.named_parameters())
    assert weights.keys() == initial.keys()
    assert all(weights[n].shape == initial[n].shape for n in initial)
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert any(not torch.allclose(weights[n].float(), initial[n].float()) for n in initial)

    fresh = build_engine(build_transformer("tiny", seed=0), config)
    assert load_checkpoint(fresh, tmp_path / "ckpt").global_step == 3
    if zero_stage < 3:
        expected_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        assert next(fresh.module.parameters()).dtype == expected_dtype
        restored = dict(fresh.module.named_parameters())
        trained = dict(engine.module.named_parameters())
        assert all(torch.equal(restored[n], trained[n]) for n in trained)
