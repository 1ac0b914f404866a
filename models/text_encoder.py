"""Text encoding for prompts and sub-action descriptions.

Wan2.1 encodes prompts with UMT5-XXL; embeddings past each prompt's length are zeroed
and padded to a fixed length. The real preset loads Wan's own tokenizer and encoder
(``tokenizer`` / ``text_encoder`` subfolders); the tiny preset builds both offline: a
byte-level tokenizer (256 byte symbols, no merges, so any text encodes without a
vocabulary download) and a small UMT5 encoder from config.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import torch

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "</s>", "<unk>")


def build_byte_level_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` over UTF-8 bytes; ids 0/1/2 are pad/eos/unk.

    It appends ``</s>`` to every sequence like the T5 tokenizers.
    """
    from tokenizers import Tokenizer, decoders, models, processors
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def build_tiny_text_encoder(config: dict[str, Any], *, seed: int = 0) -> tuple[Any, Any]:
    """Byte-level tokenizer and a random UMT5 encoder built from ``config``.

    Args:
        config: ``UMT5Config`` fields (``d_model`` must equal the transformer's ``text_dim``).
        seed: initialisation seed, so the tiny pipeline is reproducible.

    Returns:
        ``(tokenizer, UMT5EncoderModel)`` in eval mode.
    """
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = build_byte_level_tokenizer()
    umt5_config = UMT5Config(
        vocab_size=len(tokenizer),
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        **config,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = UMT5EncoderModel(umt5_config)
    return tokenizer, encoder.eval()


def clean_prompt(text: str) -> str:
    """Unescape HTML entities and collapse whitespace, as Wan's pipeline does."""
    return re.sub(r"\s+", " ", html.unescape(html.unescape(text))).strip()


@torch.no_grad()
def encode_texts(
    tokenizer: Any,
    text_encoder: Any,
    texts: Sequence[str],
    max_length: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode texts to fixed-length embeddings, zero past each text's length (Wan's rule).

    Args:
        texts: ``N`` strings (an empty string still yields its end-of-sequence token).
        max_length: tokens per text, truncating longer ones.

    Returns:
        ``(N, max_length, C)`` embeddings and ``(N, max_length)`` bool token mask.
    """
    if not texts:
        raise ValueError("encode_texts needs at least one text")
    device = device if device is not None else text_encoder.device
    cleaned = [clean_prompt(text) for text in texts]
    inputs = tokenizer(
        cleaned,
        padding="max_length",
        max_length=max_length,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    ids, mask = inputs.input_ids.to(device), inputs.attention_mask.to(device).bool()
    hidden = text_encoder(ids, attention_mask=mask.long()).last_hidden_state
    hidden = hidden * mask.unsqueeze(-1).to(hidden.dtype)
    return hidden.to(dtype or hidden.dtype), mask
