"""Training phases chained and resumed: (start checkpoint, steps, sample ids per step) ->
(checkpoint, exported model, metrics), on the tiny model with synthetic batches."""

from __future__ import annotations

import copy
import json
import re
import shutil

import pytest
import torch

from orchestration.params import parse_params
from training.batches import SyntheticBatchSource
from training.checkpoint import CheckpointError, load_exported_model
from training.phase import PhaseSpec, rank_micro_batches, run_phase

SOURCE = SyntheticBatchSource((4, 2, 4, 4), 32, prompt_tokens=6, action_tokens=3)
NULL_PROMPT = torch.zeros(6, 32)
GLOBAL_BATCH = 2


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waits on a shared CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def step_ids(step: int) -> list[str]:
    """The sampler stand-in: sample ids of 0-based global step `step`."""
    return [f"s{step}-{i}" for i in range(GLOBAL_BATCH)]


@pytest.fixture(scope="module")
def training(base_params_raw):
    raw = copy.deepcopy(base_params_raw)
    raw["training"].update(use_demo=False, global_batch=GLOBAL_BATCH, micro_batch=1,
                           precision="fp32", zero_stage=0, lr=1e-3, warmup_steps=1,
                           total_steps=100, checkpoint_every=1, cfg_dropout=0.5)
    return parse_params(raw).training


@pytest.fixture(scope="module")
def phases(training, tmp_path_factory):
    """Phase 1 (2 steps, from scratch); phase 2 (2 steps, from phase 1); and phase 2 again,
    interrupted after 1 step and resumed."""
    root = tmp_path_factory.mktemp("phases")

    def run(name, steps, ids, start=None):
        spec = PhaseSpec(name, steps, root / name, start_checkpoint=start)
        return run_phase(spec, training, ids, SOURCE, null_prompt_embeds=NULL_PROMPT)

    first = run("phase_1", 2, step_ids)
    # Phase 2 gets its ids as an iterable over its own steps (global steps 2 and 3).
    second = run("phase_2", 2, [step_ids(2), step_ids(3)], first.checkpoint_dir)
    cut = run("phase_2_cut", 1, [step_ids(2), step_ids(3)], first.checkpoint_dir)
    resumed = run("phase_2_cut", 2, [step_ids(2), step_ids(3)], first.checkpoint_dir)
    return {"root": root, "first": first, "second": second, "cut": cut, "resumed": resumed,
            "run": run}


def test_a_phase_writes_checkpoint_model_and_metrics(phases):
    first = phases["first"]
    assert (first.start_step, first.global_step, first.resumed_from) == (0, 2, None)
    assert first.checkpoint.name == "step_00000002"
    assert (first.checkpoint_dir / "latest").read_text() == "step_00000002"
    metrics = json.loads((first.model_dir.parent / "metrics.json").read_text())
    assert metrics == first.metrics
    assert metrics["steps_run"] == 2 and metrics["samples"] == 4
    assert metrics["final_loss"] == first.records[-1].loss
    logged = [json.loads(line) for line in (first.model_dir.parent / "steps.jsonl").open()]
    assert [r["step"] for r in logged] == [1, 2]
    model = load_exported_model(first.model_dir)
    assert model.config.use_timeline_modules is True


def test_the_next_phase_continues_weights_schedule_and_step(phases):
    first, second = phases["first"], phases["second"]
    assert (second.start_step, second.global_step) == (2, 4)
    assert second.resumed_from == str(first.checkpoint)
    assert [r.step for r in second.records] == [3, 4]
    # The LR schedule continues: WarmupLR reaches its peak at global step 4.
    assert [r.lr for r in first.records + second.records] == [0.0, 0.0, 5e-4, 1e-3]
    exported_1 = load_exported_model(first.model_dir).state_dict()
    exported_2 = load_exported_model(second.model_dir).state_dict()
    assert any(not torch.equal(exported_1[k], exported_2[k]) for k in exported_1)


def test_an_interrupted_phase_resumes_bit_for_bit(phases):
    second, cut, resumed = phases["second"], phases["cut"], phases["resumed"]
    assert cut.global_step == 3
    assert resumed.resumed_from.endswith("phase_2_cut/checkpoints/step_00000003")
    assert (resumed.start_step, resumed.global_step) == (2, 4)
    assert [r.step for r in resumed.records] == [4]
    assert resumed.records[0].loss == second.records[1].loss
    assert cut.records[0].loss == second.records[0].loss
    digests = [json.loads((r.model_dir.parent / "ranks" / "rank_00000.json").read_text())
               ["parameter_digest"] for r in (second, resumed)]
    assert digests[0] == digests[1]
    logged = [json.loads(line)["step"]
              for line in (resumed.model_dir.parent / "steps.jsonl").open()]
    assert logged == [3, 4]


def test_a_finished_phase_runs_no_more_steps(phases):
    again = phases["run"]("phase_1", 2, step_ids)
    assert again.records == [] and again.global_step == 2


def test_a_checkpoint_folder_belongs_to_one_phase(phases, training):
    spec = PhaseSpec("phase_3", 1, phases["root"] / "phase_1")
    with pytest.raises(ValueError, match="holds phase 'phase_1', not 'phase_3'"):
        run_phase(spec, training, step_ids, SOURCE, null_prompt_embeds=NULL_PROMPT)


def test_a_checkpoint_folder_without_latest_is_an_error_not_a_fresh_start(phases, training, tmp_path):
    """Complete tags without ``latest`` would otherwise look like "no checkpoint": the phase
    would restart from random weights (or the previous phase) over its own progress."""
    shutil.copytree(phases["root"] / "phase_1", tmp_path / "phase_1")
    folder = tmp_path / "phase_1" / "checkpoints"
    (folder / "latest").unlink()
    expected = re.escape(f"checkpoint folder {folder} holds complete checkpoints "
                         "['step_00000001', 'step_00000002'] but no 'latest' file")
    logged_before = (tmp_path / "phase_1" / "steps.jsonl").read_text()
    with pytest.raises(CheckpointError, match=expected):
        run_phase(PhaseSpec("phase_1", 2, tmp_path / "phase_1"), training, step_ids, SOURCE,
                  null_prompt_embeds=NULL_PROMPT)
    assert (tmp_path / "phase_1" / "steps.jsonl").read_text() == logged_before
    # The same folder as the next phase's start is refused alike.
    with pytest.raises(CheckpointError, match=expected):
        run_phase(PhaseSpec("phase_2", 1, tmp_path / "phase_2", start_checkpoint=folder), training,
                  step_ids, SOURCE, null_prompt_embeds=NULL_PROMPT)


def test_rank_slices_cover_the_global_batch_once():
    ids = [[f"x{i}" for i in range(8)]]
    seen = []
    for rank in range(2):
        batches = list(rank_micro_batches(ids, lambda chunk: list(chunk), global_batch=8,
                                          micro_batch=2, rank=rank, world_size=2))
        assert len(batches) == 2
        seen += [i for chunk in batches for i in chunk]
    assert seen == ids[0]
    with pytest.raises(ValueError, match="step 0 of the sampler has 3 sample ids"):
        list(rank_micro_batches([["a", "b", "c"]], list, global_batch=8, micro_batch=2, rank=0,
                                world_size=1))
