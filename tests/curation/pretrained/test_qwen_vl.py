"""Qwen2.5-VL video inputs built without the torchvision video processor."""

import numpy as np
import pytest

from curation.pretrained.qwen_vl import (
    QwenVideoChat,
    chat_prompt,
    sample_indices,
    smart_resize,
    video_patches,
)


@pytest.mark.parametrize(("h", "w"), [(40, 50), (480, 832), (1080, 1920), (10, 600)])
@pytest.mark.parametrize(("lo", "hi"), [(56 * 56, 28 * 28 * 16), (128 * 784, 360 * 420)])
def test_smart_resize_respects_factor_and_area(h, w, lo, hi):
    rh, rw = smart_resize(h, w, 28, lo, hi)
    assert rh % 28 == 0 and rw % 28 == 0
    assert lo <= rh * rw <= hi or (rh * rw > hi and min(rh, rw) == 28)
    if min(rh, rw) > 28:  # aspect ratio kept unless a side is clamped to one block
        assert abs(rw / rh - w / h) / (w / h) < 0.35


def test_sample_indices_spread_over_the_clip():
    assert sample_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_indices(3, 8).tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        sample_indices(0, 4)


def test_video_patches_match_the_image_processor_for_a_still_clip():
    """Two identical frames make one temporal step that equals the image processor's
    patches of that frame (it repeats an image along time): same layout, same normalisation."""
    from transformers import Qwen2VLImageProcessorPil

    frame = np.random.default_rng(3).integers(0, 256, (56, 84, 3), dtype=np.uint8)
    processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 84)
    expected = processor(images=[frame], return_tensors="np")
    patches, grid = video_patches(np.stack([frame, frame]), (56, 84), 14, 2, 2,
                                  processor.image_mean, processor.image_std)
    assert grid == tuple(expected["image_grid_thw"][0])
    np.testing.assert_allclose(patches, expected["pixel_values"], atol=1e-5)


def test_odd_frame_counts_repeat_the_last_frame():
    clip = np.random.default_rng(4).integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
    padded = np.concatenate([clip, clip[-1:]])
    args = ((28, 28), 14, 2, 2, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    odd, grid = video_patches(clip, *args)
    assert grid == (2, 2, 2)
    np.testing.assert_array_equal(odd, video_patches(padded, *args)[0])


def test_build_inputs_expand_video_tokens_and_time_steps(tiny_qwen):
    chat = QwenVideoChat(tiny_qwen.path, **tiny_qwen.chat_kwargs)
    assert chat.name == f"pretrained:qwen2.5-vl({tiny_qwen.path})"
    clip = np.zeros((20, 40, 50, 3), np.uint8)
    inputs = chat.build_inputs(clip, "What happens?", fps=10.0)
    t, h, w = inputs["video_grid_thw"][0].tolist()
    assert (t, h, w) == (2, 4, 6)  # 4 sampled frames; 40 x 50 px grows to 56 x 84 (min area)
    n_video = int((inputs["input_ids"] == chat.video_token_id).sum())
    assert n_video == t * h * w // 4 == int((inputs["mm_token_type_ids"] == 2).sum())
    assert inputs["pixel_values_videos"].shape == (t * h * w, 3 * 2 * 14 * 14)
    # 4 frames sampled from a 2 s clip: 2 fps, so one temporal step (2 frames) spans 1 s
    assert inputs["second_per_grid_ts"].tolist() == [1.0]
    text = chat.tokenizer.decode(inputs["input_ids"][0])
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    assert "What happens?<|im_end|>" in text


def test_chat_prompt_puts_the_video_before_the_question():
    prompt = chat_prompt("Q?", "<V>")
    assert prompt.index("<V>") < prompt.index("Q?") < prompt.index("<|im_start|>assistant")
