"""DeepSpeed config from the typed `training` params: batch arithmetic, schedule, precision,
and validation errors that name the key."""

from __future__ import annotations

import copy

import pytest

from core.errors import ParamsError
from orchestration.params import parse_params
from training.deepspeed_config import batch_layout, deepspeed_config


def training_params(base: dict, **changes):
    raw = copy.deepcopy(base)
    raw["training"].update(changes)
    return parse_params(raw).training


@pytest.mark.parametrize(
    ("global_batch", "micro", "world", "accumulation"),
    [(32, 4, 8, 1), (32, 1, 8, 4), (32, 2, 2, 8), (4, 2, 1, 2), (6, 3, 2, 1), (1, 1, 1, 1)],
)
def test_global_batch_is_micro_times_accumulation_times_world(
    global_batch, micro, world, accumulation
):
    layout = batch_layout(global_batch, micro, world)
    assert layout.gradient_accumulation == accumulation
    assert layout.micro_batch * layout.gradient_accumulation * layout.world_size == global_batch
    assert layout.per_rank == global_batch // world


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((32, 3, 1), "training.global_batch (32) must be a multiple of "
                     "training.micro_batch x world size (3 x 1"),
        ((32, 4, 3), "4 x 3 = 12"),
        ((0, 1, 1), "training.global_batch: expected a positive integer, got 0"),
        ((8, -1, 1), "training.micro_batch: expected a positive integer, got -1"),
        ((8, 1, 0), "training.world_size: expected a positive integer, got 0"),
    ],
)
def test_batch_layout_rejects_what_does_not_divide(args, needle):
    with pytest.raises(ParamsError) as err:
        batch_layout(*args)
    assert needle in str(err.value)


def test_config_of_the_paper_recipe(base_params_raw):
    training = training_params(base_params_raw, use_demo=False)
    config = deepspeed_config(training, world_size=8)
    assert (config["train_batch_size"], config["train_micro_batch_size_per_gpu"],
            config["gradient_accumulation_steps"]) == (32, 4, 1)
    assert config["optimizer"] == {
        "type": "AdamW",
        "params": {"lr": 1e-5, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
                   "torch_adam": True},
    }
    assert config["scheduler"] == {
        "type": "WarmupLR",
        "params": {"warmup_min_lr": 0.0, "warmup_max_lr": 1e-5, "warmup_num_steps": 500,
                   "warmup_type": "linear"},
    }
    assert config["zero_optimization"] == {"stage": 2}
    assert config["bf16"] == {"enabled": True}
    assert config["gradient_clipping"] == 1.0


def test_linear_decay_schedule_and_fp32(base_params_raw):
    training = training_params(base_params_raw, use_demo=False, lr_schedule="linear_decay",
                               precision="fp32", zero_stage=0)
    config = deepspeed_config(training, world_size=1)
    assert config["scheduler"]["type"] == "WarmupDecayLR"
    assert config["scheduler"]["params"]["total_num_steps"] == 10000
    assert "bf16" not in config and "fp16" not in config
    assert config["gradient_accumulation_steps"] == 8


def test_demo_values_replace_the_paper_recipe(base_params_raw):
    training = training_params(base_params_raw, use_demo=True)
    run = training.effective()
    demo = base_params_raw["training"]["demo"]
    assert (run.total_steps, run.global_batch, run.micro_batch, run.lr) == (
        demo["total_steps"], demo["global_batch"], demo["micro_batch"], demo["lr"])
    assert run.cpu_threads == demo["cpu_threads"]
    assert run.use_demo is False
    assert run.seed == base_params_raw["training"]["seed"]  # not overridden: kept
    config = deepspeed_config(training, world_size=2)
    assert config["train_batch_size"] == demo["global_batch"]
    assert config["scheduler"]["params"]["warmup_num_steps"] == demo["warmup_steps"]


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"micro_batch": 5}, "training: global_batch (32) must be a multiple of micro_batch (5)"),
        ({"warmup_steps": 20000}, "warmup_steps (20000) must not exceed total_steps (10000)"),
        ({"demo": {"global_batch": 6, "micro_batch": 4}},
         "demo.global_batch (6) must be a multiple of demo.micro_batch (4)"),
        ({"precision": "fp16"}, "training.precision: expected one of 'fp32' or 'bf16'"),
        ({"zero_stage": 4}, "training.zero_stage"),
        ({"cfg_dropout": 1.5}, "training.cfg_dropout"),
        ({"demo": {"lr": 0}}, "training.demo.lr"),
        ({"demo": {"batch": 2}}, "training.demo.batch: unknown key"),
        ({"learning_rate": 1e-4}, "training.learning_rate: unknown key"),
    ],
)
def test_bad_training_params_name_the_key(base_params_raw, section, needle):
    raw = copy.deepcopy(base_params_raw)
    if "demo" in section:
        raw["training"]["demo"].update(section.pop("demo"))
    raw["training"].update(section)
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert needle in str(err.value)


def test_config_rejects_a_world_size_the_batch_cannot_split(base_params_raw):
    training = training_params(base_params_raw, use_demo=False)
    with pytest.raises(ParamsError, match="multiple of training.micro_batch x world size"):
        deepspeed_config(training, world_size=3)
