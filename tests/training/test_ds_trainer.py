"""The DeepSpeed training loop on the tiny ReactID model (CPU, gloo, one process): the loss
goes down, resume is bit-exact, a NaN stops the run at its step with the last good
checkpoint intact, exports reload, and broken checkpoints are reported by file name."""

from __future__ import annotations

import copy
import itertools
import json
import shutil

import pytest
import torch

from orchestration.params import parse_params
from training.batches import SyntheticBatchSource
from training.checkpoint import (
    CheckpointError,
    export_model,
    load_checkpoint,
    load_exported_model,
    save_checkpoint,
)
from training.deepspeed_config import deepspeed_config
from training.trainer import (
    CheckpointPolicy,
    DataExhaustedError,
    LossOptions,
    NonFiniteLossError,
    apply_cfg_dropout,
    build_engine,
    derived_seed,
    train_steps,
)

# Small latents keep a step well under a second on a CPU: (C, F, H, W) of one sample.
SHAPE = (4, 2, 4, 4)
SOURCE = SyntheticBatchSource(SHAPE, 32, prompt_tokens=6, action_tokens=3)
NULL_PROMPT = torch.zeros(6, 32)
OPTIONS = LossOptions(flow_shift=3.0, cfg_dropout=0.3, null_prompt_embeds=NULL_PROMPT, seed=7)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waits on a shared CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def micro_batches(start: int = 0):
    """Micro-batches of one sample each, the i-th always the same."""
    for index in itertools.count(start):
        yield SOURCE([f"sample-{index}"])


def parameters(engine) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in engine.module.named_parameters()}


@pytest.fixture(scope="module")
def make_engine(base_params_raw):
    """``make_engine(lr=...)``: a fresh engine over the tiny model (seed 0), by default 2
    micro-batches of 1 sample per step, fp32, ZeRO 0."""
    from models.presets import build_transformer

    def make(lr: float = 1e-3, global_batch: int = 2):
        raw = copy.deepcopy(base_params_raw)
        raw["training"].update(use_demo=False, global_batch=global_batch, micro_batch=1,
                               precision="fp32", zero_stage=0, lr=lr, warmup_steps=1)
        config = deepspeed_config(parse_params(raw).training, world_size=1)
        return build_engine(build_transformer("tiny", seed=0), config)

    return make


@pytest.fixture(scope="module")
def resumed_run(make_engine, tmp_path_factory):
    """Four steps with a checkpoint every two; then a fresh engine resumed from step 2."""
    folder = tmp_path_factory.mktemp("ckpt")
    first = make_engine()
    policy = CheckpointPolicy(folder, every=2, client_state=lambda step: {"position": step})
    straight = train_steps(first, micro_batches(), 4, options=OPTIONS, checkpoints=policy)
    second = make_engine()
    loaded = load_checkpoint(second, folder, "step_00000002")
    resumed = train_steps(second, micro_batches(start=2 * 2), 2, options=OPTIONS)
    return {"folder": folder, "first": first, "second": second, "loaded": loaded,
            "straight": straight, "resumed": resumed, "policy": policy}


def test_loss_decreases_on_a_fixed_batch(make_engine):
    engine = make_engine(lr=5e-3, global_batch=1)
    batch = SOURCE(["fixed"])
    g = torch.Generator().manual_seed(0)
    batch["noise"] = torch.randn(batch["latents"].shape, generator=g)
    batch["sigmas"] = torch.tensor([0.6])
    options = LossOptions(flow_shift=3.0, seed=0)
    records = train_steps(engine, itertools.repeat(batch), 10, options=options)
    losses = [r.loss for r in records]
    assert all(r.samples == 1 for r in records)
    assert losses[-1] < 0.7 * losses[0], losses
    # DeepSpeed's WarmupLR: the first two updates run at warmup_min_lr and warmup lasts at
    # least two scheduler steps.
    assert [r.lr for r in records[:4]] == [0.0, 0.0, 2.5e-3, 5e-3]


def test_resume_from_a_checkpoint_repeats_the_losses_bit_for_bit(resumed_run):
    straight = [r.loss for r in resumed_run["straight"][2:]]
    resumed = [r.loss for r in resumed_run["resumed"]]
    assert resumed == straight
    assert len(set(straight)) == 2
    assert [r.step for r in resumed_run["resumed"]] == [3, 4]
    assert [r.cfg_dropped for r in resumed_run["resumed"]] == [
        r.cfg_dropped for r in resumed_run["straight"][2:]]
    a, b = parameters(resumed_run["first"]), parameters(resumed_run["second"])
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_checkpoint_carries_step_client_state_and_schedule(resumed_run):
    loaded = resumed_run["loaded"]
    assert (loaded.tag, loaded.global_step, loaded.client_state) == ("step_00000002", 2,
                                                                     {"position": 2})
    assert resumed_run["policy"].last.endswith("step_00000004")
    assert (resumed_run["folder"] / "latest").read_text() == "step_00000004"
    assert [r.lr for r in resumed_run["resumed"]] == [r.lr for r in resumed_run["straight"][2:]]


def test_checkpoint_restores_the_rng_states(resumed_run, tmp_path):
    import random

    import numpy as np

    engine = resumed_run["second"]
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    save_checkpoint(engine, tmp_path)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    load_checkpoint(engine, tmp_path)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(make_engine, tmp_path):
    engine = make_engine()
    good = {}
    policy = CheckpointPolicy(tmp_path, every=2)

    def poisoned():
        for index, batch in enumerate(micro_batches()):
            if index == 2 * 2 + 1:  # step 3, second micro-batch
                batch["latents"] = torch.full_like(batch["latents"], float("nan"))
            yield batch

    def remember(record):
        good[record.step] = parameters(engine)

    with pytest.raises(NonFiniteLossError) as err:
        train_steps(engine, poisoned(), 5, remember, options=OPTIONS, checkpoints=policy)
    assert err.value.step == 3
    assert "loss is nan at step 3" in str(err.value)
    assert err.value.last_checkpoint.endswith("step_00000002")
    assert "step_00000002" in str(err.value)
    assert (tmp_path / "latest").read_text() == "step_00000002"
    fresh = make_engine()
    loaded = load_checkpoint(fresh, tmp_path)
    assert loaded.global_step == 2 and fresh.global_steps == 2
    restored = parameters(fresh)
    assert all(torch.equal(restored[n], good[2][n]) for n in restored)
    assert all(torch.isfinite(p).all() for p in restored.values())


def test_export_reloads_with_from_pretrained(resumed_run, tmp_path):
    engine = resumed_run["first"]
    folder = export_model(engine, tmp_path / "model", metadata={"phase": "test"})
    assert (folder / "diffusion_pytorch_model.safetensors").is_file()
    assert json.loads((folder / "training.json").read_text()) == {"global_step": 4, "phase": "test"}
    model = load_exported_model(folder)
    trained = parameters(engine)
    reloaded = dict(model.named_parameters())
    assert trained.keys() == reloaded.keys()
    assert all(torch.equal(trained[n], reloaded[n]) for n in trained)
    # Exporting again replaces the folder in one step.
    export_model(engine, folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_export_with_missing_weights_is_named(resumed_run, tmp_path):
    folder = export_model(resumed_run["first"], tmp_path / "model")
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="diffusion_pytorch_model.safetensors"):
        load_exported_model(folder)


MODEL_STATES = "mp_rank_00_model_states.pt"


def _break_truncate(tag):
    path = tag / MODEL_STATES
    path.write_bytes(path.read_bytes()[:100])
    return f"{path} is corrupt: 100 bytes"


def _break_flip(tag):
    path = tag / MODEL_STATES
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return f"{path} is corrupt: SHA-256 does not match"


def _break_rng(tag):
    path = tag / "rng_rank00000.json"
    path.unlink()
    return f"checkpoint file {path} is missing"


def _break_manifest(tag):
    (tag / "manifest.json").unlink()
    return f"{tag / 'manifest.json'} is missing"


def _break_latest(tag):
    # Complete tags without `latest` are an error naming them, never "nothing to resume".
    (tag.parent / "latest").unlink()
    return (f"checkpoint folder {tag.parent} holds complete checkpoints "
            "['step_00000002', 'step_00000004'] but no 'latest' file")


def _break_behind_manifest(tag):
    from training.checkpoint import write_manifest

    (tag / MODEL_STATES).write_bytes(b"not a torch file")
    write_manifest(tag)
    return f"DeepSpeed could not load checkpoint {tag}"


@pytest.mark.parametrize(
    "damage",
    [_break_truncate, _break_flip, _break_rng, _break_manifest, _break_latest,
     _break_behind_manifest],
)
def test_corrupt_or_missing_checkpoint_is_named(resumed_run, tmp_path, damage):
    folder = tmp_path / "ckpt"
    shutil.copytree(resumed_run["folder"], folder)
    expected = damage(folder / "step_00000004")
    engine = resumed_run["second"]
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(engine, folder)
    assert expected in str(err.value)


def test_a_tag_without_manifest_is_an_interrupted_save_and_ignored(resumed_run, tmp_path):
    from training.checkpoint import complete_tags, latest_tag

    folder = tmp_path / "ckpt"
    shutil.copytree(resumed_run["folder"] / "step_00000002", folder / "step_00000002")
    (folder / "step_00000002" / "manifest.json").unlink()
    assert complete_tags(folder) == [] and latest_tag(folder) is None
    with pytest.raises(CheckpointError, match=f"{folder / 'latest'} is missing"):
        load_checkpoint(resumed_run["second"], folder)


def test_missing_checkpoint_folder_and_tag_are_named(resumed_run, tmp_path):
    engine = resumed_run["second"]
    missing = tmp_path / "nope"
    with pytest.raises(CheckpointError, match=f"checkpoint folder {missing} does not exist"):
        load_checkpoint(engine, tmp_path / "nope")
    with pytest.raises(CheckpointError, match="step_00000099 does not exist"):
        load_checkpoint(engine, resumed_run["folder"], "step_00000099")


def test_data_running_out_is_an_error(resumed_run):
    with pytest.raises(DataExhaustedError, match="micro-batch 1 of 2"):
        train_steps(resumed_run["second"], [SOURCE(["a"])], 1, options=OPTIONS)


# ------------------------------------------------------------------ CFG dropout


def test_cfg_dropout_replaces_prompt_and_empties_the_timeline():
    batch = SOURCE(["a", "b", "c"])
    null = torch.full((6, 32), 0.5)
    out, dropped = apply_cfg_dropout(batch, 1.0, torch.Generator().manual_seed(0), null)
    assert dropped.all()
    assert torch.equal(out["prompt_embeds"], null.expand(3, 6, 32))
    assert not out["timeline_token_mask"].any()
    assert (out["timeline_embeds"] == 0).all() and (out["action_subjects"] == -1).all()
    assert torch.equal(out["reference_latents"], batch["reference_latents"])
    assert torch.equal(out["subject_masks"], batch["subject_masks"])
    assert batch["timeline_token_mask"].all()  # the input batch is left alone


def test_cfg_dropout_is_seeded_and_follows_its_probability():
    batch = SOURCE([str(i) for i in range(400)])
    first = apply_cfg_dropout(batch, 0.25, torch.Generator().manual_seed(3), NULL_PROMPT)[1]
    again = apply_cfg_dropout(batch, 0.25, torch.Generator().manual_seed(3), NULL_PROMPT)[1]
    other = apply_cfg_dropout(batch, 0.25, torch.Generator().manual_seed(4), NULL_PROMPT)[1]
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert 60 < int(first.sum()) < 140
    kept = ~first
    out = apply_cfg_dropout(batch, 0.25, torch.Generator().manual_seed(3), NULL_PROMPT)[0]
    assert torch.equal(out["prompt_embeds"][kept], batch["prompt_embeds"][kept])
    assert out["timeline_token_mask"][kept].all()
    unchanged, none = apply_cfg_dropout(batch, 0.0, torch.Generator().manual_seed(3), NULL_PROMPT)
    assert unchanged is batch and not none.any()


def test_cfg_dropout_checks_the_null_prompt_shape():
    with pytest.raises(ValueError, match=r"null_prompt_embeds \(5, 32\) does not match"):
        apply_cfg_dropout(SOURCE(["a"]), 1.0, torch.Generator(), torch.zeros(5, 32))
    with pytest.raises(ValueError, match="needs null_prompt_embeds"):
        LossOptions(flow_shift=3.0, cfg_dropout=0.1)


def test_a_dropped_sample_next_to_a_kept_one_gives_a_finite_loss():
    from models.losses import reactid_training_loss
    from models.presets import build_transformer

    batch = SOURCE(["a", "b"])
    out, dropped = apply_cfg_dropout(batch, 0.5, torch.Generator().manual_seed(1), NULL_PROMPT)
    assert dropped.tolist() == [False, True] or dropped.tolist() == [True, False]
    loss = reactid_training_loss(build_transformer("tiny", seed=0), out, flow_shift=3.0).loss
    assert torch.isfinite(loss)


def test_derived_seeds_are_stable_and_distinct():
    assert derived_seed(1, 2, 3) == derived_seed(1, 2, 3)
    seeds = {derived_seed(0, kind, step, 0, 0) for kind in (1, 2) for step in range(100)}
    assert len(seeds) == 200
    assert all(0 <= s < 2**63 for s in seeds)
