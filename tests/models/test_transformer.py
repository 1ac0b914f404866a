"""ReactIDTransformer3DModel: shapes, gradients, save/load and zero-initialised injections."""

from __future__ import annotations

import pytest
import torch
from diffusers import WanTransformer3DModel

from models.losses import reactid_training_loss
from models.presets import build_transformer
from models.transformer_reactid import NEW_MODULE_PREFIXES, ReactIDTransformer3DModel
from models.variants import ABLATION_TABLES, MODEL_VARIANTS


def _forward(model, batch, with_timeline=True):
    kwargs = {}
    if with_timeline:
        kwargs = {
            "timeline_hidden_states": batch["timeline_embeds"],
            "timeline_token_mask": batch["timeline_token_mask"],
            "action_spans": batch["action_spans"],
            "action_subjects": batch["action_subjects"],
        }
    return model(
        hidden_states=batch["latents"],
        timestep=torch.tensor([700.0, 50.0])[: batch["latents"].shape[0]],
        encoder_hidden_states=batch["prompt_embeds"],
        reference_latents=batch["reference_latents"],
        reference_mask=batch["reference_mask"],
        **kwargs,
    )


@pytest.mark.parametrize("variant", sorted(MODEL_VARIANTS))
def test_every_variant_has_output_shapes_and_gradients(variant, batch, make_model, randomise):
    model = make_model(variant)
    randomise(model)
    timeline_on = model.config.use_timeline_modules

    output = _forward(model, batch, with_timeline=timeline_on)
    assert output.sample.shape == batch["latents"].shape
    if timeline_on:
        assert output.subject_mask_logits.shape == (2, 2, 3, 4, 4)
    else:
        assert output.subject_mask_logits is None

    loss = reactid_training_loss(
        model, batch, flow_shift=3.0, generator=torch.Generator().manual_seed(0)
    )
    assert (loss.mask is not None) == timeline_on
    loss.loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{variant}: {name} received no gradient"
        assert torch.isfinite(param.grad).all(), f"{variant}: {name} has a non-finite gradient"
        if name.startswith(NEW_MODULE_PREFIXES):
            assert param.grad.abs().sum() > 0, f"{variant}: {name} has an all-zero gradient"


def test_variant_registry_covers_the_ablation_tables(make_model):
    for table, names in ABLATION_TABLES.items():
        for name in names:
            assert name in MODEL_VARIANTS, f"{table} lists unknown variant {name}"
    assert make_model("base").mask_predictor is None
    assert make_model("tarope_T8").config.tarope_rescale_length == 8.0
    attention_mask = make_model("attention_mask").config
    assert attention_mask.timeline_rope == "none" and attention_mask.timeline_temporal_mask
    assert make_model("label_values_0_1").config.label_beta == 1.0
    with pytest.raises(KeyError, match="unknown model variant 'tarope_T3'"):
        make_model("tarope_T3")


def test_zero_initialised_model_equals_the_base_model(batch, make_model, randomise, tiny_preset):
    model = make_model("reactid")
    base = WanTransformer3DModel(**tiny_preset.transformer)
    base_keys = set(base.state_dict())
    base.load_state_dict(
        {k: v for k, v in model.state_dict().items() if k in base_keys}, strict=True
    )
    with torch.no_grad():
        expected = base(
            batch["latents"], torch.tensor([700.0, 50.0]), batch["prompt_embeds"]
        ).sample
        actual = _forward(model, batch).sample
    assert torch.equal(actual, expected)

    randomise(model)
    with torch.no_grad():
        assert not torch.allclose(_forward(model, batch).sample, expected)


def test_extending_a_saved_wan_checkpoint_starts_as_that_checkpoint(tmp_path, batch, tiny_preset):
    torch.manual_seed(3)
    base = WanTransformer3DModel(**tiny_preset.transformer)
    base.save_pretrained(tmp_path / "transformer")
    model = build_transformer("tiny", "reactid", pretrained=str(tmp_path))
    assert isinstance(model, ReactIDTransformer3DModel)
    for name, tensor in base.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    # Reference blocks start as copies of the main blocks they feed.
    assert torch.equal(
        model.reference_branch.blocks[1].attn1.to_q.weight, base.blocks[1].attn1.to_q.weight
    )
    with torch.no_grad():
        expected = base(
            batch["latents"], torch.tensor([700.0, 50.0]), batch["prompt_embeds"]
        ).sample
        assert torch.equal(_forward(model, batch).sample, expected)


def test_save_pretrained_round_trip_is_exact(tmp_path, batch, make_model, randomise):
    model = make_model("label_adaptive", tarope_rescale_length=4.0)
    randomise(model)
    model.save_pretrained(tmp_path)
    loaded = ReactIDTransformer3DModel.from_pretrained(tmp_path)
    assert loaded.config.label_binding == "adaptive" and loaded.config.tarope_rescale_length == 4.0
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    with torch.no_grad():
        first, second = _forward(model, batch), _forward(loaded, batch)
    assert torch.equal(first.sample, second.sample)
    assert torch.equal(first.subject_mask_logits, second.subject_mask_logits)


def test_gradient_checkpointing_gives_the_same_gradients(batch, make_model, randomise):
    grads = []
    for checkpointing in (False, True):
        model = make_model()
        randomise(model)
        if checkpointing:
            model.enable_gradient_checkpointing()
        loss = reactid_training_loss(
            model, batch, flow_shift=3.0, generator=torch.Generator().manual_seed(0)
        )
        loss.loss.backward()
        grads.append(model.adapters[0].timeline_attention.attn.to_q.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_padded_reference_slots_do_not_change_the_output(batch, make_model, randomise):
    model = make_model()
    randomise(model)
    single = {k: v[1:] for k, v in batch.items()}  # sample 1 has one real reference
    with torch.no_grad():
        before = _forward(model, single, True)
        single["reference_latents"] = single["reference_latents"].clone()
        single["reference_latents"][:, 1] = 5.0  # padded slot
        after = _forward(model, single, True)
    torch.testing.assert_close(before.sample, after.sample)


def test_invalid_inputs_are_rejected_with_the_cause(batch, make_model, tiny_preset):
    model = make_model("base")
    with pytest.raises(ValueError, match="no timeline modules"):
        _forward(model, batch, with_timeline=True)
    with pytest.raises(ValueError, match="num_reference_layers"):
        ReactIDTransformer3DModel(**tiny_preset.transformer, num_reference_layers=3)
    with pytest.raises(ValueError, match="timeline_rope"):
        ReactIDTransformer3DModel(
            **tiny_preset.transformer, num_reference_layers=2, timeline_rope="sinusoidal"
        )
    full = make_model()
    with pytest.raises(ValueError, match="action_spans"):
        full(
            batch["latents"],
            torch.tensor([1.0, 2.0]),
            batch["prompt_embeds"],
            timeline_hidden_states=batch["timeline_embeds"],
        )
