"""The dataset browser's rows, its easy-to-hard examples per quartile and the embedded data."""

from __future__ import annotations

import json

import pytest

from training.dataset_browser import browser_rows, phase_of, quartile_examples, render_page

TAUS = [0.2, 0.4, 0.6, 1.0]


@pytest.mark.parametrize("d, phase", [(0.0, 1), (0.2, 1), (0.21, 2), (0.6, 3), (1.0, 4), (1.2, None), (None, None)])
def test_phase_of_is_the_first_phase_whose_tau_admits_the_sample(d, phase):
    assert phase_of(d, TAUS) == phase


def _rows():
    curated = [{"clip_id": f"c{i}", "shard": "s", "kept": i != 3, "reasons": [] if i != 3 else ["blurry"],
                "caption": f"caption {i}", "identity": "p", "duration_s": 3.0} for i in range(4)]
    annotations = [{"clip_id": f"c{i}", "label": "man" if i % 2 else "dog", "fine_label": None, "events": []}
                   for i in range(3)]
    samples = [{"sample_id": f"c{i}-e0:intra", "clip_id": f"c{i}", "status": "ok", "reference_kind": "intra"}
               for i in range(3)]
    samples.append({"sample_id": "c0-e0:ref:c1-e0", "clip_id": "c0", "status": "ok", "reference_kind": "inter"})
    scores = {"c0-e0:intra": 0.1, "c1-e0:intra": 0.5, "c2-e0:intra": 0.9, "c0-e0:ref:c1-e0": 0.95}
    previews = {f"c{i}": {"preview_key": f"previews/s/c{i}.mp4", "thumbnail_key": f"previews/s/c{i}.png"}
                for i in range(4)}
    return browser_rows(curated, annotations, previews, samples, scores, TAUS)


def test_rows_carry_difficulty_quartile_phases_and_reasons():
    rows = {r["clip_id"]: r for r in _rows()}
    assert rows["c0"]["d_overall"] == 0.1 and rows["c0"]["quartile"] == 1 and rows["c0"]["phases"] == [1, 4]
    assert rows["c2"]["quartile"] == 4 and rows["c1"]["labels"] == ["man"]
    assert rows["c3"]["status"] == "rejected" and rows["c3"]["reasons"] == ["blurry"] and rows["c3"]["samples"] == []
    assert rows["c3"]["preview"] == "../previews/s/c3.mp4"  # relative to reports/


def test_examples_run_from_easy_to_hard_within_each_quartile():
    bands = quartile_examples(_rows(), 4, per_quartile=1)
    assert [[s["sample_id"] for s in band] for band in bands] == [["c0-e0:intra"], [], ["c1-e0:intra"],
                                                                   ["c2-e0:intra"]]
    bands = quartile_examples(_rows(), 4, per_quartile=2)
    assert [s["d_overall"] for s in bands[3]] == [0.9, 0.95]


def test_embedded_data_cannot_close_its_script_tag():
    rows = _rows()
    rows[0]["caption"] = "a </script><script>alert(1)</script> caption"
    page = render_page(rows, quartile_examples(rows, 4, 2), TAUS, "t")
    payload = page.split('<script type="application/json" id="data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(payload)["rows"][0]["caption"] == rows[0]["caption"]


def test_the_page_is_redone_when_a_shards_previews_appear_and_needs_the_curriculum(tmp_path):
    from core.errors import StageInputError
    from core.stage import AGGREGATE, StageContext, marker_key
    from core.storage import LocalObjectStore
    from core.tables import write_json
    from training.dataset_browser import browser_inputs_hash

    store = LocalObjectStore(tmp_path)
    ctx = StageContext("dataset_browser", AGGREGATE, None, store, ("s-000",))
    with pytest.raises(StageInputError, match="training_samples"):
        browser_inputs_hash(ctx)
    for stage in ("training_samples", "difficulty_scores", "difficulty_quartiles"):
        write_json(store, marker_key(stage, AGGREGATE), {"fingerprint": f"fp-{stage}"})
    without = browser_inputs_hash(ctx)
    write_json(store, marker_key("clip_previews", "s-000"), {"fingerprint": "fp-previews"})
    assert browser_inputs_hash(ctx) != without
