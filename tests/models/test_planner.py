"""Timeline planners: sequencing-word splitting and the instruction-model planner."""

from __future__ import annotations

import pytest
import torch

from core.timeline import SubAction, TimelineError
from models.planner import (
    InstructionModelPlanner,
    PlannerOutputError,
    SequencingWordPlanner,
    parse_planner_output,
)


@pytest.mark.parametrize(
    ("prompt", "actions"),
    [
        (
            "A man walks into the room, sits down on the sofa, and then waves at the camera.",
            ["A man walks into the room", "sits down on the sofa", "waves at the camera"],
        ),
        (
            "The dog runs across the yard. After that it jumps into the pool "
            "and finally shakes off the water",
            ["The dog runs across the yard", "it jumps into the pool", "shakes off the water"],
        ),
        ("a man picks up a cup and drinks coffee", ["a man picks up a cup", "drinks coffee"]),
        (
            "A woman in a red dress and black shoes smiling",
            ["A woman in a red dress and black shoes smiling"],
        ),
        ("A girl with glasses, jeans and a hat", ["A girl with glasses, jeans and a hat"]),
    ],
)
def test_sequencing_words_and_verb_clauses_split_the_prompt(prompt, actions):
    assert SequencingWordPlanner().split_actions(prompt) == actions


def test_duration_is_shared_by_description_length_on_a_grid():
    timeline = SequencingWordPlanner(subject="man").plan(
        "A man walks in slowly, then sits, then waves", 5.0
    )
    assert timeline.global_prompt == "A man walks in slowly, then sits, then waves"
    # Word counts 5 : 1 : 1 of 7 -> boundaries at 25/7 and 30/7 s, rounded to 0.1 s.
    assert [(a.start, a.end) for a in timeline.actions] == [(0.0, 3.6), (3.6, 4.3), (4.3, 5.0)]
    assert {a.subject for a in timeline.actions} == {"man"}


def test_every_action_keeps_at_least_one_time_step():
    timeline = SequencingWordPlanner(time_step=0.5).plan(
        "a very long slow dramatic walk across the entire empty hall, then nods, then bows", 1.5
    )
    assert [a.duration for a in timeline.actions] == [0.5, 0.5, 0.5]
    merged = SequencingWordPlanner(time_step=1.0).plan("jumps, then spins, then lands", 2.0)
    assert len(merged.actions) == 1 and merged.actions[0].end == 2.0
    with pytest.raises(TimelineError, match="empty prompt"):
        SequencingWordPlanner().plan("  ", 5.0)


def test_planner_output_is_extracted_from_free_text_and_rescaled_on_overshoot():
    text = "Sure! Here is the plan:\n0-2s: raises a glass; 2-6s: drinks and smiles\nEnjoy."
    timeline = parse_planner_output(text, prompt="a toast", duration=5.0, subject="man")
    assert timeline.actions == (
        SubAction(0.0, 5 / 3, "raises a glass", "man"),
        SubAction(5 / 3, 5.0, "drinks and smiles", "man"),
    )
    early = parse_planner_output("0-1s: sits", prompt="p", duration=5.0)
    assert early.duration == 5.0 and early.actions[0].end == 1.0
    with pytest.raises(
        PlannerOutputError, match="no 'START-ENDs: action' segment found; model output: 'blah'"
    ):
        parse_planner_output("blah", prompt="p", duration=5.0)
    with pytest.raises(PlannerOutputError, match="overlaps"):
        parse_planner_output("0-3s: a; 2-4s: b", prompt="p", duration=5.0)


ANSWER = ["0-2s:", "wave", "hands;", "2-5s:", "sit", "down"]


def _save_scripted_instruction_model(folder) -> None:
    """A tiny Llama whose greedy continuation of the chat prompt is a fixed timeline.

    Attention and MLP outputs are zeroed, so the residual stream is the token's one-hot
    embedding and the LM head maps each token to its successor in ``ANSWER``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<assistant>"]
    vocab = {
        token: index for index, token in enumerate(specials + ANSWER + ["split", "the", "video"])
    }
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["<assistant>"],
    )
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}<assistant>"
    size = len(vocab)
    width = size + 4 + size % 2  # rotary embeddings need an even head size
    config = LlamaConfig(
        vocab_size=size,
        hidden_size=width,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    model = LlamaForCausalLM(config)
    chain = ["<assistant>", *ANSWER, "</s>"]
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(size, width))
        layer = model.model.layers[0]
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
        head = torch.zeros(size, width)
        head[1, :size] = 10.0  # anything else -> end of sequence
        for current, following in zip(chain[:-1], chain[1:], strict=True):
            head[:, vocab[current]] = 0.0
            head[vocab[following], vocab[current]] = 10.0
        model.lm_head.weight.copy_(head)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_instruction_model_planner_loads_generates_and_parses(tmp_path):
    _save_scripted_instruction_model(tmp_path)
    planner = InstructionModelPlanner(str(tmp_path), max_new_tokens=12, subject="man")
    prompt_text = planner.build_prompt("a man waves then sits", 5.0)
    assert prompt_text.endswith("<assistant>") and "5 seconds" in prompt_text
    timeline = planner.plan("a man waves then sits", 5.0)
    assert timeline.global_prompt == "a man waves then sits"
    assert timeline.actions == (
        SubAction(0, 2, "wave hands", "man"),
        SubAction(2, 5, "sit down", "man"),
    )
