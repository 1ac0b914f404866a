"""NaturalScore: the script's frames and parsing, averaging and normalisation on hand-computed
cases, the chat-API rater against a local HTTP server, and a tiny Qwen2.5-VL rater loaded
through ``QwenVideoChat``."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from evaluation.errors import MetricUnavailableError
from evaluation.metrics import benchmark_values, build_metric
from evaluation.metrics.base import SampleContext
from evaluation.metrics.natural import (
    PROMPT,
    NaturalScore,
    OpenAIChatRater,
    RatingError,
    api_spec,
    build_qwen,
    chat_request_body,
    natural_frame_indices,
    parse_rating,
    qwen_spec,
    resize_long_side,
)
from evaluation.benchmark_scores import build_score_card

KEY = "sk-test-not-a-real-key-123"


@pytest.mark.parametrize(
    ("total", "expected"),
    [(81, list(range(0, 80, 5))), (16, list(range(16))), (10, list(range(10))), (33, list(range(0, 32, 2)))],
)
def test_frames_are_the_scripts(total, expected):
    assert natural_frame_indices(total).tolist() == expected


def test_resize_long_side_truncates_the_short_side():
    assert resize_long_side(np.zeros((48, 64, 3), np.uint8)).shape == (384, 512, 3)
    assert resize_long_side(np.zeros((100, 51, 3), np.uint8)).shape == (512, 261, 3)


@pytest.mark.parametrize(("reply", "value"), [("4", 4.0), (" 3.5\n", 3.5), ("5.0", 5.0), ("7", 7.0)])
def test_parse_rating_reads_what_float_reads(reply, value):
    assert parse_rating(reply) == value


@pytest.mark.parametrize("reply", ["Score: 4", "four", "", "nan", "4/5"])
def test_parse_rating_refuses_anything_else(reply):
    with pytest.raises(RatingError, match="not a"):
        parse_rating(reply)


class ScriptedRater:
    name = "scripted"

    def __init__(self, replies):
        self.replies = list(replies)
        self.seen = []

    def rate(self, frames, fps):
        self.seen.append((frames.shape, fps))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def test_runs_are_averaged_and_unparseable_replies_recorded():
    rater = ScriptedRater(["4", "3", "It looks real, 5"])
    metric = NaturalScore(rater, api_spec("gpt-4o-2024-11-20"))
    frames = np.zeros((40, 8, 8, 3), np.uint8)
    value = metric(frames, SampleContext(fps=16.0))
    assert value.value == pytest.approx(3.5)
    assert "mean of 2 of 3 runs" in value.note and "'It looks real, 5'" in value.note
    # 40 frames: interval 2, 16 frames at 8 fps
    assert rater.seen == [((16, 8, 8, 3), 8.0)] * 3
    card = build_score_card([[value]])
    assert card.normalized["natural"] == pytest.approx((3.5 - 1) / 4)


def test_no_number_means_not_computed_with_the_replies():
    metric = NaturalScore(ScriptedRater(["maybe", RatingError("HTTP 500 from x (after 5 attempts)")]),
                          api_spec("gpt-4o"), runs=2)
    value = metric(np.zeros((4, 8, 8, 3), np.uint8), SampleContext())
    assert value.value is None
    assert "'maybe'" in value.note and "HTTP 500" in value.note


def test_specs_name_the_rater():
    assert api_spec("gpt-4o-2024-11-20").name == "natural" and not api_spec("gpt-4o").is_proxy
    for spec in (api_spec("gpt-4o-mini"), api_spec("qwen-vl-max"), qwen_spec("pretrained:qwen2.5-vl(x)")):
        assert spec.is_proxy and spec.key == "natural" and spec.name != "natural"
    proxy = NaturalScore(ScriptedRater(["4"]), api_spec("qwen-vl-max"), runs=1)
    assert benchmark_values([proxy(np.zeros((2, 4, 4, 3), np.uint8), SampleContext())]) == {}


# --------------------------------------------------------------------------- chat API


class ChatServer:
    """A local OpenAI-compatible endpoint: answers each POST with the next scripted
    (status, content) and records the requests."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, dict(self.headers), body))
                status, content = server.script.pop(0)
                if status == 200:
                    payload = {
                        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                    data = json.dumps(payload).encode()
                else:
                    data = json.dumps({"error": {"message": content}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_api_rater_needs_the_key_from_the_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MetricUnavailableError, match="OPENAI_API_KEY"):
        build_metric("natural")


def test_natural_is_gpt4o_only(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(ValueError, match="natural_api_proxy"):
        build_metric("natural", model="llama-3-vision")


def test_natural_through_a_local_chat_api(monkeypatch, shifting_clip):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    script = [(200, "4"), (500, "overloaded"), (200, " 5 "), (200, "I would say 4.")]
    with ChatServer(script) as server:
        metric = build_metric("natural", base_url=server.url, attempts=2, backoff_min=0.0, backoff_max=0.0)
        frames = shifting_clip(40, 1, 0)
        value = metric(frames, SampleContext(fps=16.0))
    assert metric.spec.name == "natural" and not metric.spec.is_proxy
    assert value.value == pytest.approx(4.5)
    assert "'I would say 4.'" in value.note and "2 of 3 runs" in value.note
    assert len(server.requests) == 4  # the 500 was retried
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert body["model"] == "gpt-4o-2024-11-20" and body["stream"] is False
    (message,) = body["messages"]
    content = message["content"]
    assert message["role"] == "user" and len(content) == 17
    assert all(c["type"] == "image_url" and c["image_url"]["url"].startswith("data:image/jpeg;base64,")
               for c in content[:16])
    assert content[16] == {"type": "text", "text": PROMPT}
    assert body == json.loads(json.dumps(chat_request_body(frames[natural_frame_indices(40)], "gpt-4o-2024-11-20")))
    assert KEY not in value.note and KEY not in repr(metric.rater)


def test_client_errors_are_recorded_not_retried(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer([(401, "bad key"), (401, "bad key")]) as server:
        metric = build_metric("natural_api_proxy", model="qwen-vl-max", base_url=server.url, runs=2,
                              attempts=3, backoff_min=0.0)
        value = metric(np.zeros((3, 8, 8, 3), np.uint8), SampleContext())
    assert len(server.requests) == 2
    assert value.value is None and "HTTP 401" in value.note and KEY not in value.note
    assert metric.spec.name == "natural_api_proxy" and metric.spec.is_proxy
    assert "qwen-vl-max" in metric.spec.definition


def test_unreachable_endpoint_is_recorded(monkeypatch):
    import socket

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rater = OpenAIChatRater(base_url=f"http://127.0.0.1:{port}/v1", attempts=2, backoff_min=0.0, timeout=5)
    with pytest.raises(RatingError, match="after 2 attempts"):
        rater.rate(np.zeros((1, 8, 8, 3), np.uint8), 16.0)


# --------------------------------------------------------------------------- local Qwen2.5-VL


@pytest.fixture(scope="module")
def tiny_qwen_rater(tmp_path_factory):
    """A tiny random Qwen2.5-VL (word-level tokenizer) saved like a hub checkpoint, then fitted
    for a few steps to answer "4" to the NaturalScore prompt, and saved again."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    from curation.pretrained.qwen_vl import QwenVideoChat

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("qwen2.5-vl")
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>", "[UNK]"]
    words = ["system", "user", "assistant", "You", "are", "a", "helpful", ".", "1", "2", "3", "4", "5"]
    vocab = {w: i for i, w in enumerate(specials + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="<|endoftext|>",
                                        eos_token="<|im_end|>", additional_special_tokens=specials[1:7])
    tokenizer.save_pretrained(root)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56).save_pretrained(root)
    torch.manual_seed(0)
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
            rope_scaling={"type": "mrope", "mrope_section": [4, 2, 2]},
            bos_token_id=None, eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[0], tokens_per_second=2),
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"],
    )
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(root)
    chat_kwargs = dict(dtype="float32", min_pixels=56 * 56, max_pixels=56 * 56)
    random_chat = QwenVideoChat(root, num_frames=16, **chat_kwargs)

    # fit: after the prompt, answer "4" then <|im_end|>
    clip = np.random.default_rng(0).integers(0, 256, (16, 40, 50, 3), dtype=np.uint8)
    inputs = random_chat.build_inputs(clip, PROMPT, 8.0)
    answer = torch.tensor([vocab["4"], vocab["<|im_end|>"]])
    prompt = inputs["input_ids"][0]
    inputs["input_ids"] = torch.cat([prompt, answer])[None]
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    inputs["mm_token_type_ids"] = (inputs["input_ids"] == config.video_token_id).int() * 2
    inputs["labels"] = torch.cat([torch.full_like(prompt, -100), answer])[None]
    model = random_chat.model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        out = model(**inputs)
        out.loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        probs = out.logits[0, -3:-1].detach().softmax(-1).gather(-1, answer[:, None])
        if float(probs.min()) > 0.95:
            break
    else:
        pytest.fail("tiny Qwen2.5-VL did not learn to answer 4")
    model.eval().save_pretrained(root / "fitted")
    tokenizer.save_pretrained(root / "fitted")
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56).save_pretrained(root / "fitted")
    yield root, clip, chat_kwargs
    torch.set_num_threads(threads)


def test_qwen_rater_loads_through_qwen_video_chat(tiny_qwen_rater):
    root, clip, chat_kwargs = tiny_qwen_rater
    metric = build_metric("natural_qwen_proxy", model_path=str(root / "fitted"), **chat_kwargs)
    assert metric.spec.name == "natural_qwen_proxy" and metric.spec.is_proxy
    assert metric.runs == 1 and metric.rater.chat.num_frames == 16
    value = metric(clip, SampleContext(fps=8.0))
    assert value.value == 4.0, value.note
    assert str(root / "fitted") in value.note
    assert benchmark_values([value]) == {}


def test_random_qwen_answers_are_recorded_not_numbers(tiny_qwen_rater):
    root, clip, chat_kwargs = tiny_qwen_rater
    metric = build_qwen(root, **chat_kwargs)  # the random weights, before fitting
    value = metric(clip, SampleContext(fps=8.0))
    random_answer = metric.rater.chat.ask(clip, PROMPT, 8.0, metric.rater.max_new_tokens)
    try:
        number = float(random_answer.strip())
    except ValueError:
        number = None
    assert value.value == number
    if number is None:
        assert repr(" ".join(random_answer.split())) in value.note
