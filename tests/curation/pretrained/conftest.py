"""Tiny random-initialised checkpoints for the pretrained backends, built offline.

Every fixture builds a model and its processor / tokenizer from config, saves them with
``save_pretrained`` into a temp dir, and the tests load them through the backends' own
constructors (the code path of the real checkpoints). The Qwen2.5-VL and Florence-2
checkpoints are additionally fitted, for a few dozen steps, to answer fixed texts on one
fixed clip, so that generation -> decoding -> parsing is checked end to end.

With ``--import-mode=importlib`` helpers reach the tests as fixtures, not as a module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def byte_tokenizer(
    specials: list[str],
    template: tuple[str, str] | None = None,
    corpus: list[str] | None = None,
    **kwargs,
):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with ``specials`` as ids 0..len-1.

    Without ``corpus`` it has no merges (one token per byte); with one, BPE merges are
    trained on it (as Qwen's byte-level BPE, in miniature), so that long prompts become
    short sequences. Any text encodes either way.

    Args:
        specials: special tokens.
        template: optional (bos, eos) wrapped around every encoded text.
        corpus: texts to learn merges from.
        kwargs: ``PreTrainedTokenizerFast`` arguments (bos_token, eos_token, ...).
    """
    from tokenizers import Tokenizer, decoders, models, processors, trainers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(ByteLevel.alphabet())
    if corpus is None:
        vocab = {token: index for index, token in enumerate(specials + alphabet)}
        backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    else:
        backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    if corpus is not None:
        trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=specials,
                                      initial_alphabet=alphabet, show_progress=False)
        backend.train_from_iterator(corpus, trainer)
    if template is not None:
        bos, eos = template
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}",
            special_tokens=[(bos, backend.token_to_id(bos)), (eos, backend.token_to_id(eos))],
        )
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: the tiny models gain nothing from more, and on shared cores
    spinning worker threads cost more CPU than the work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fit_to_answers(model, batch: dict, max_steps: int, lr: float, causal: bool) -> int:
    """Adam on teacher-forced answers until every answer token has probability >= 0.9, so
    that greedy and beam decoding (with a KV cache: other float rounding) reproduce them.

    Args:
        batch: model inputs with ``labels`` (-100 outside the answers).
        causal: logits at position i predict label i + 1 (decoder-only); else label i
            (encoder-decoder, whose decoder inputs are the shifted labels).

    Returns:
        The number of steps taken; fails the test session if the answers are not learnt.
    """
    import torch

    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    labels = batch["labels"][:, 1:] if causal else batch["labels"]
    answer = labels != -100
    for step in range(1, max_steps + 1):
        out = model(**batch)
        out.loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        logits = out.logits[:, :-1] if causal else out.logits
        probs = logits.detach().softmax(-1)[answer].gather(-1, labels[answer][:, None])
        if float(probs.min()) >= 0.9:
            model.eval()
            return step
    pytest.fail(f"tiny model did not learn its answers in {max_steps} steps")


@dataclass(frozen=True)
class TinyQwen:
    path: Path
    clip: np.ndarray  # uint8 (6, 40, 50, 3): the clip the answers were fitted on
    fps: float
    answers: dict[str, str]  # prompt name -> fitted answer
    chat_kwargs: dict


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> TinyQwen:
    """Tiny Qwen2.5-VL (byte tokenizer, PIL image processor) fitted to four answers."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    from curation.pretrained.captioner import ATTRIBUTE_PROMPT, CAPTION_PROMPT, FINE_LABEL_PROMPT
    from curation.pretrained.qwen_vl import SYSTEM_PROMPT, QwenVideoChat
    from curation.pretrained.timeline import TIMELINE_PROMPT

    root = tmp_path_factory.mktemp("qwen2.5-vl")
    clip = np.random.default_rng(0).integers(0, 256, (6, 40, 50, 3), dtype=np.uint8)
    fps = 2.0
    chat_kwargs = dict(dtype="float32", num_frames=4, min_pixels=56 * 56, max_pixels=56 * 56)
    answers = {
        "caption": "A man in a red shirt waves, then sits on a bench in a park.",
        "attributes": '```json\n{"ethnicity": null, "gender": "male", "age": 30, '
                      '"expression": "smiling", "attire": ["red shirt", "jeans"]}\n```',
        "fine_label": '"The man in red."',
        "timeline": "Sure. 0-1s: [waves]; 1-3.5s: [sits down]",
    }
    questions = {
        "caption": (CAPTION_PROMPT, None),
        "attributes": (ATTRIBUTE_PROMPT.format(subject="the main person"), None),
        "fine_label": (FINE_LABEL_PROMPT.format(label="man"), None),
        "timeline": (TIMELINE_PROMPT.format(duration=3.0), fps),
    }
    corpus = [SYSTEM_PROMPT, "system user assistant"] + [q for q, _ in questions.values()]
    tokenizer = byte_tokenizer(QWEN_SPECIALS, corpus=corpus + list(answers.values()),
                               eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               additional_special_tokens=QWEN_SPECIALS[1:])
    tokenizer.save_pretrained(root)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=28 * 28 * 16).save_pretrained(root)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIALS}
    torch.manual_seed(0)
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
            rope_scaling={"type": "mrope", "mrope_section": [4, 2, 2]},
            bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
            patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
            fullatt_block_indexes=[0], tokens_per_second=2,
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(root)

    chat = QwenVideoChat(root, **chat_kwargs)
    samples = []
    for key, (question, clip_fps) in questions.items():
        inputs = chat.build_inputs(clip, question, clip_fps)
        answer = tokenizer(answers[key] + "<|im_end|>", return_tensors="pt")["input_ids"][0]
        prompt = inputs["input_ids"][0]
        labels = torch.cat([torch.full_like(prompt, -100), answer])
        samples.append((inputs, torch.cat([prompt, answer]), labels))
    # One right-padded batch: one forward/backward per step for all four answers.
    length = max(len(sequence) for _, sequence, _ in samples)
    pad = ids["<|endoftext|>"]

    def padded(row, value):
        return torch.cat([row, torch.full((length - len(row),), value, dtype=row.dtype)])

    batch = {
        "input_ids": torch.stack([padded(i, pad) for _, i, _ in samples]),
        "attention_mask": torch.stack([padded(torch.ones_like(i), 0) for _, i, _ in samples]),
        "labels": torch.stack([padded(lab, -100) for _, _, lab in samples]),
        "pixel_values_videos": torch.cat([s[0]["pixel_values_videos"] for s in samples]),
        "video_grid_thw": torch.cat([s[0]["video_grid_thw"] for s in samples]),
        "second_per_grid_ts": torch.cat([s[0]["second_per_grid_ts"] for s in samples]),
    }
    batch["mm_token_type_ids"] = (batch["input_ids"] == config.video_token_id).int() * 2
    fit_to_answers(chat.model, batch, max_steps=300, lr=3e-3, causal=True)
    chat.model.save_pretrained(root)
    return TinyQwen(root, clip, fps, answers, chat_kwargs)


@dataclass(frozen=True)
class TinyFlorence:
    path: Path
    image: np.ndarray  # uint8 (48, 64, 3): the image the answer was fitted on
    label: str
    bins: tuple[int, int, int, int]  # the fitted box's location bins


@pytest.fixture(scope="session")
def tiny_florence(tmp_path_factory) -> TinyFlorence:
    """Tiny Florence-2 (byte BART tokenizer + 1000 location tokens) fitted to one grounding."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    root = tmp_path_factory.mktemp("florence-2")
    tokenizer = byte_tokenizer(["<s>", "<pad>", "</s>", "<unk>"], bos_token="<s>",
                               eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                               extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_tokens([f"<loc_{i}>" for i in range(1000)])
    image_processor = CLIPImageProcessorPil(
        size={"height": 32, "width": 32}, do_center_crop=False,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    image_processor.image_seq_length = 17  # (32 / 8)^2 spatial tokens + 1 temporal token
    post = {"phrase_grounding": {"banned_grounding_tokens": ["the image"]}, "pure_text": {},
            "description_with_bboxes": {}, "description_with_polygons": {}, "polygons": {},
            "bboxes": {}, "description_with_bboxes_or_polygons": {}, "ocr": {}}
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tokenizer,
                                   post_processor_config=post)
    processor.save_pretrained(root)
    torch.manual_seed(0)
    config = Florence2Config(
        text_config=dict(
            model_type="bart", vocab_size=len(tokenizer), max_position_embeddings=128,
            encoder_layers=1, decoder_layers=1, encoder_ffn_dim=64, decoder_ffn_dim=64,
            encoder_attention_heads=2, decoder_attention_heads=2, d_model=32,
            bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2,
            dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        ),
        vision_config=dict(
            depths=[1, 1], patch_size=[7, 3], patch_stride=[4, 2], patch_padding=[3, 1],
            patch_prenorm=[False, True], embed_dim=[8, 16], num_heads=[1, 2], num_groups=[1, 2],
            window_size=2, projection_dim=32, drop_path_rate=0.0,
        ),
        image_token_id=tokenizer.image_token_id,
    )
    model = Florence2ForConditionalGeneration(config)

    from PIL import Image

    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    label, bins = "a person", (100, 250, 700, 900)
    inputs = processor(text="<CAPTION_TO_PHRASE_GROUNDING>" + label,
                       images=Image.fromarray(image), return_tensors="pt")
    answer = "<s>person" + "".join(f"<loc_{b}>" for b in bins) + "</s>"
    labels = tokenizer(answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
    batch = {"input_ids": inputs["input_ids"], "pixel_values": inputs["pixel_values"],
             "labels": labels}
    fit_to_answers(model, batch, max_steps=300, lr=1e-2, causal=False)
    model.save_pretrained(root)
    return TinyFlorence(root, image, label, bins)


@pytest.fixture(scope="session")
def tiny_siglip(tmp_path_factory) -> Path:
    """Tiny SigLIP with a SentencePiece tokenizer trained on a few sentences (as the real
    checkpoints ship ``spiece.model``)."""
    import sentencepiece as spm
    import torch
    from transformers import (
        SiglipConfig,
        SiglipImageProcessorPil,
        SiglipModel,
        SiglipProcessor,
        SiglipTokenizer,
    )

    root = tmp_path_factory.mktemp("siglip")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(
        f"a photo of a {word}" for word in
        ["man", "woman", "dog", "cat", "car", "red car", "person in a blue coat", "bench"] * 4
    ))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(root / "spiece"), vocab_size=40, hard_vocab_limit=False,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
    )
    tokenizer = SiglipTokenizer(vocab_file=str(root / "spiece.model"), model_max_length=64)
    processor = SiglipProcessor(
        image_processor=SiglipImageProcessorPil(size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(root / "model")
    torch.manual_seed(0)
    config = SiglipConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4),
    )
    SiglipModel(config).save_pretrained(root / "model")
    return root / "model"


@pytest.fixture(scope="session")
def tiny_sam2(tmp_path_factory) -> Path:
    """Tiny SAM2 (128 px input) and the real checkpoints' preprocessor_config.json fields."""
    import json

    import torch
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2Model,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    root = tmp_path_factory.mktemp("sam2")
    backbone = Sam2HieraDetConfig(
        hidden_size=12, image_size=128, patch_stride=4, patch_kernel_size=7, patch_padding=3,
        blocks_per_stage=[1, 1, 1, 1], embed_dim_per_stage=[12, 24, 48, 96],
        num_attention_heads_per_stage=[1, 1, 1, 1],
    )
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[96, 48, 24, 12],
                              backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
                              fpn_hidden_size=32)
    config = Sam2Config(
        vision_config=vision,
        prompt_encoder_config=Sam2PromptEncoderConfig(image_size=128, patch_size=16,
                                                      mask_input_channels=8, hidden_size=32),
        mask_decoder_config=Sam2MaskDecoderConfig(hidden_size=32, mlp_dim=64,
                                                  num_attention_heads=4, iou_head_hidden_dim=32),
        image_size=128,
    )
    torch.manual_seed(0)
    Sam2Model(config).save_pretrained(root)
    (root / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Sam2ImageProcessorFast", "processor_class": "Sam2Processor",
        "do_resize": True, "size": {"height": 128, "width": 128},
        "mask_size": {"height": 32, "width": 32}, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
    }))
    return root


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """Tiny CLIP with a byte tokenizer that wraps texts in start/end tokens."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    root = tmp_path_factory.mktemp("clip")
    specials = ["<|endoftext|>", "<|startoftext|>"]
    tokenizer = byte_tokenizer(specials, template=("<|startoftext|>", "<|endoftext|>"),
                               bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                               pad_token="<|endoftext|>")
    tokenizer.save_pretrained(root)
    CLIPImageProcessorPil(size={"shortest_edge": 32},
                          crop_size={"height": 32, "width": 32}).save_pretrained(root)
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                         bos_token_id=1, eos_token_id=0, pad_token_id=0),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(root)
    return root
