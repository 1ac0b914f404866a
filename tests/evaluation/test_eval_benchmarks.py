import json
from pathlib import Path

import pytest

from evaluation.benchmarks import (
    TimelineEvent,
    read_facial_benchmark,
    read_opens2v,
    read_timeline_benchmark,
)
from evaluation.errors import BenchmarkFormatError

DATA = Path(__file__).parent / "data"


def test_opens2v_open_domain_file():
    bench = read_opens2v(DATA / "opens2v" / "Open-Domain_Eval.json")
    assert bench.domain == "open"
    assert [s.sample_id for s in bench.samples] == ["singleface_1", "faceobj_2", "multiobject_1"]
    face, faceobj, multi = bench.samples
    assert faceobj.img_paths[1] == "Images/humanobj/thing/animal/dog/4.jpg"
    assert faceobj.class_labels == ("Man", "Dog")
    assert (face.category, face.scores_face) == ("singleface", True)
    assert faceobj.face_reference == "Images/humanobj/human/crop_man/commoner/5.jpg"
    assert (multi.scores_face, multi.face_reference) == (False, None)


def test_opens2v_domain_from_file_name_and_override(tmp_path):
    assert read_opens2v(DATA / "opens2v" / "Human-Domain_Eval.json").domain == "human"
    copy = tmp_path / "mine.json"
    copy.write_text((DATA / "opens2v" / "Human-Domain_Eval.json").read_text())
    with pytest.raises(BenchmarkFormatError, match="cannot infer the OpenS2V domain"):
        read_opens2v(copy)
    assert read_opens2v(copy, domain="single").domain == "single"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"img_paths": "a.jpg", "prompt": "p", "class_label": ["A"]},
            "'img_paths' must be a non-empty list",
        ),
        ({"img_paths": ["a.jpg"], "class_label": ["A"]}, "'prompt' is missing"),
        (
            {"img_paths": ["a.jpg"], "prompt": " ", "class_label": ["A"]},
            "'prompt' must be a non-empty",
        ),
        (
            {"img_paths": ["a.jpg"], "prompt": "p", "class_label": ["A", "B"]},
            "2 labels for 1 images",
        ),
        ({"img_paths": ["a.jpg"], "prompt": "p"}, "'class_label' is missing"),
    ],
)
def test_opens2v_errors_name_entry_and_field(tmp_path, entry, message):
    path = tmp_path / "Open-Domain_Eval.json"
    path.write_text(json.dumps({"singleobj_7": entry}))
    with pytest.raises(BenchmarkFormatError, match=message) as info:
        read_opens2v(path)
    assert "entry 'singleobj_7'" in str(info.value)


def test_track2_eval_list_numbers_samples_and_parses_seconds():
    bench = read_timeline_benchmark(DATA / "ipvg" / "track2_eval.json")
    assert [s.sample_id for s in bench.samples] == ["1", "2", "3"]
    second = bench.samples[1]
    assert second.class_labels == ("dog", "man")
    assert second.events == (
        TimelineEvent(0.0, 1.5, "The dog runs along the waterline."),
        TimelineEvent(1.5, 3.0, "The man throws a stick."),
    )
    assert [s.timeline_end for s in bench.samples] == [4.0, 3.0, 1.0]


def test_reactid_eval_seq_shape_is_read_by_the_same_reader():
    bench = read_timeline_benchmark(DATA / "reactid_eval_seq.json")
    assert [s.sample_id for s in bench.samples] == ["seq_human_001", "seq_animal_001"]
    assert len(bench.samples[0].events) == 3
    assert bench.samples[1].global_prompt == "A brown horse in a paddock."


@pytest.mark.parametrize(
    ("captions", "message"),
    [
        ([], "'temporal_captions' must be a non-empty list"),
        ([{"start": 0, "end": 1}], r"temporal_captions\[0\]: lacks any of \['description'"),
        ([{"start": 2, "end": 1, "description": "x"}], "end 1s must be after start 2s"),
        ([{"start": "soon", "end": 1, "description": "x"}], "expected seconds"),
        ([{"start": 0, "end": 2, "description": "x"}, {"start": 1, "end": 3, "description": "y"}], "overlap"),
        (
            [
                {"start": 2, "end": 3, "description": "x"},
                {"start": 1, "end": 2, "description": "y"},
            ],
            "actions must be sorted",
        ),
    ],
)
def test_timeline_errors(tmp_path, captions, message):
    entry = {
        "img_paths": ["r.jpg"],
        "class_label": ["cat"],
        "global_prompt": "g",
        "temporal_captions": captions,
    }
    path = tmp_path / "eval.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(BenchmarkFormatError, match=message) as info:
        read_timeline_benchmark(path)
    assert "entry '1'" in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(BenchmarkFormatError, match="file not found"):
        read_timeline_benchmark(tmp_path / "absent.json")
    broken = tmp_path / "eval.json"
    broken.write_text("{not json")
    with pytest.raises(BenchmarkFormatError, match="not valid JSON"):
        read_timeline_benchmark(broken)
    broken.write_text("[]")
    with pytest.raises(BenchmarkFormatError, match="has no entries"):
        read_timeline_benchmark(broken)


def test_track1_flat_list():
    bench = read_facial_benchmark(DATA / "ipvg" / "track1_eval.json")
    assert [s.sample_id for s in bench.samples] == ["1", "2", "3"]
    assert bench.samples[1].class_labels == ("woman",)
    assert bench.samples[0].identity is None


def test_track1_grouped_prompts_expand_with_identity_and_index():
    samples = read_facial_benchmark(DATA / "ipvg" / "track1_grouped.json").samples
    assert len(samples) == 10
    assert [s.sample_id for s in samples[:3]] == ["1", "2", "3"]
    assert (samples[6].identity, samples[6].prompt_index) == ("id002", 2)
    assert samples[6].prompt == "A person laughs with friends at a cafe."
    assert samples[6].img_paths == ("ids/002/portrait.jpg", "ids/002/side.jpg")


def test_track1_bad_prompt_index(tmp_path):
    path = tmp_path / "t1.json"
    path.write_text(json.dumps([{"img_paths": ["a.jpg"], "prompt": "p", "prompt_index": 0}]))
    with pytest.raises(BenchmarkFormatError, match="'prompt_index' must be a positive integer"):
        read_facial_benchmark(path)


# OpenS2V raw values whose normalised TotalScore is 0.516 with the open/single weights and
# 0.600 with the human ones (hand-computed in test_eval_total_score.py)
RAW = {"aesthetics": 5.5, "motion_smoothness": 0.9, "motion_amplitude": 0.3, "facesim": 0.6,
       "gme": 0.4, "nexus": 0.01, "natural": 3.8}


@pytest.mark.parametrize(
    ("file_name", "domain", "total"),
    [
        ("Open-Domain_Eval.json", "open", 0.516),
        ("Human-Domain_Eval.json", "human", 0.600),
        ("Single-Domain_Eval.json", "single", 0.516),
    ],
)
def test_opens2v_set_is_totalled_with_the_domain_of_its_file(tmp_path, monkeypatch, file_name, domain, total):
    from core.storage import LocalObjectStore
    from evaluation import demo_benchmarks
    from evaluation.generation import benchmark_domain, benchmark_requests
    from evaluation.metrics.base import MetricSpec, MetricValue
    from evaluation.benchmark_scores import score_card_json

    monkeypatch.setitem(demo_benchmarks.FILES, "opens2v", file_name)
    store = LocalObjectStore(tmp_path)
    store.put_bytes(demo_benchmarks.benchmark_key("opens2v"),
                    (DATA / "opens2v" / "Human-Domain_Eval.json").read_bytes())
    assert benchmark_domain("opens2v") == domain
    assert len(benchmark_requests(store, "opens2v")) == 2
    values = [MetricValue(MetricSpec(k, k, "pretrained", "OpenS2V", False), v) for k, v in RAW.items()]
    card = score_card_json("opens2v", "m", [values], benchmark_domain("opens2v"), "v1.1", {})
    assert card["domain"] == domain and card["total_score"] == pytest.approx(total)


def test_face_and_timeline_sets_keep_their_weights():
    from evaluation.generation import benchmark_domain

    assert [benchmark_domain(b) for b in ("opens2v", "ipvg_track1", "ipvg_track2", "reactid_seq")] == [
        "open", "human", "open", "open"]


def test_opens2v_requests_take_the_domain_from_the_key_not_the_local_copy(tmp_path):
    """An object store may hand out a local copy under another name (the S3 store's
    ``object.json``): the domain still comes from the benchmark's key."""
    import contextlib
    import shutil

    from core.storage import LocalObjectStore
    from evaluation.demo_benchmarks import benchmark_key
    from evaluation.generation import benchmark_requests

    class RenamingStore(LocalObjectStore):
        @contextlib.contextmanager
        def local_path(self, key):
            copy = tmp_path / "copy" / "object.json"
            copy.parent.mkdir(exist_ok=True)
            shutil.copyfile(self.path(key), copy)
            yield copy

    store = RenamingStore(tmp_path / "store")
    store.put_bytes(benchmark_key("opens2v"), (DATA / "opens2v" / "Open-Domain_Eval.json").read_bytes())
    assert [r.sample_id for r in benchmark_requests(store, "opens2v")]
