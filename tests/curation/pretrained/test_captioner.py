"""Qwen2.5-VL captioner: answer parsers on hand-written outputs, and the tiny fitted model
loaded through ``VlmCaptioner`` end to end (prompt -> generate -> decode -> parse)."""

import numpy as np
import pytest

from curation.pretrained.captioner import VlmCaptioner, parse_attributes, parse_fine_label
from curation.pretrained.errors import BackendLoadError, ModelOutputError


@pytest.mark.parametrize(
    "text",
    [
        '{"ethnicity": "East Asian", "gender": "female", "age": "about 30", '
        '"expression": "smiling", "attire": "white shirt"}',
        'Here you go:\n```json\n{"Ethnicity": "East Asian", "Gender": "female", "age": "about 30",'
        ' "facial_expression": "smiling", "clothing": "white shirt"}\n```',
        "{'race': 'East Asian', 'sex': 'female', 'age': 'about 30', 'emotion': 'smiling', "
        "'outfit': 'white   shirt'} Hope this helps {not json}",
    ],
)
def test_parse_attributes_accepts_common_answer_shapes(text):
    assert parse_attributes(text) == {
        "ethnicity": "East Asian", "gender": "female", "age": "about 30",
        "expression": "smiling", "attire": "white shirt",
    }


def test_parse_attributes_normalises_values():
    text = ('{"ethnicity": null, "gender": "Unknown", "age": 42, "expression": "",'
            ' "attire": ["red jacket", null, "jeans"], "hair": "black"}')
    assert parse_attributes(text) == {
        "ethnicity": None, "gender": None, "age": "42", "expression": None,
        "attire": "red jacket, jeans",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("The person is a smiling woman.", "no JSON object"),
        ('{"ethnicity": "x", "gender": "y", "age": "z"}', "'expression', 'attire'"),
        ('{"ethnicity": "x", "gender": "y", "age": "z", "expression": "e", "attire": {"top": 1}}',
         "'attire' is an object"),
    ],
)
def test_parse_attributes_errors_quote_the_raw_answer(text, message):
    with pytest.raises(ModelOutputError, match=message) as info:
        parse_attributes(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("the man in red", "the man in red"),
        ('  "The brown dog with a collar."  \nIt is on the left.', "The brown dog with a collar"),
        ("\nAnswer: 'the woman in the blue coat'", "the woman in the blue coat"),
    ],
)
def test_parse_fine_label(text, phrase):
    assert parse_fine_label(text) == phrase


def test_parse_fine_label_rejects_empty_answers():
    with pytest.raises(ModelOutputError, match="no noun phrase"):
        parse_fine_label(" \n ``  \n")


@pytest.fixture(scope="module")
def captioner(tiny_qwen):
    return VlmCaptioner(str(tiny_qwen.path), max_new_tokens=160, num_frames=4,
                        **{k: v for k, v in tiny_qwen.chat_kwargs.items() if k != "num_frames"})


def test_captioner_generates_and_parses_through_the_loaded_model(captioner, tiny_qwen):
    assert captioner.name == f"pretrained:qwen2.5-vl({tiny_qwen.path})"
    clip = tiny_qwen.clip
    assert captioner.caption(clip) == tiny_qwen.answers["caption"]
    assert captioner.describe_attributes(clip) == {
        "ethnicity": None, "gender": "male", "age": "30", "expression": "smiling",
        "attire": "red shirt, jeans",
    }
    assert captioner.fine_label(clip, "man") == "The man in red"


def test_captioner_video_reaches_the_language_model(captioner, tiny_qwen):
    import torch

    def next_token_logits(clip):
        inputs = captioner.chat.build_inputs(clip, "Describe the video.", None)
        with torch.no_grad():
            return captioner.chat.model(**inputs).logits[0, -1]

    same = next_token_logits(tiny_qwen.clip.copy())
    assert torch.equal(next_token_logits(tiny_qwen.clip), same)
    assert not torch.allclose(next_token_logits(np.full_like(tiny_qwen.clip, 128)), same)


def test_captioner_rejects_bad_frames_and_other_models(captioner, tiny_clip):
    with pytest.raises(ValueError, match=r"\(N>=1, H, W, 3\)"):
        captioner.caption(np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        captioner.caption(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(BackendLoadError, match="expected 'qwen2_5_vl'"):
        VlmCaptioner(str(tiny_clip))
