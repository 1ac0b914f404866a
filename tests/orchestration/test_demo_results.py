"""The end of `make demo` reads its outputs through the object store, so a demo on S3
(REACTID_STORAGE_BACKEND=s3) prints the reports, the curriculum and the leaderboard, and
names every output by its store URI."""

from __future__ import annotations

import json

SCHEDULE = {
    "n_samples": 40, "n_inter": 6, "total_steps": 200,
    "phases": [{"phase": k, "start_step": 50 * (k - 1), "end_step": 50 * k, "tau": 0.25 * k,
                "inter_clip_ratio": 0.1 * k, "eligible_intra": 10 * k, "eligible_inter": k} for k in range(1, 5)],
}
LEADERBOARD = ("# Leaderboard\n\n## ReactID-Bench\n\n| model | facesim |\n| --- | --- |\n| phase_4 | 0.61 |\n\n"
               "notes that the terminal does not show\n\n## Per-metric comparison\n\n| hidden | table |\n")
ARCHIVES = [{"key": "submissions/ipvg_track1.zip", "track": 1, "layout": "flat", "run": "run-1",
             "model": "phase_4", "primary": True}]


def _write_outputs(store):
    from curation import annotation_report, report as curation_report
    from evaluation.stages import LEADERBOARD_MD
    from training.stages import SCHEDULE_KEY

    store.put_bytes(curation_report.REPORT_KEY, b"# Curation report\nclips kept: 7\n")
    store.put_bytes(annotation_report.REPORT_KEY, b"# Annotation report\nsubjects verified: 5\n")
    store.put_bytes(SCHEDULE_KEY, json.dumps(SCHEDULE).encode())
    store.put_bytes(LEADERBOARD_MD, LEADERBOARD.encode())


def _check(lines: list[str], root: str, root_uri: str) -> None:
    text = "\n".join(lines)
    assert "clips kept: 7" in text and "subjects verified: 5" in text
    assert "# Curriculum (40 samples, 6 inter-clip; 200 steps)" in text
    assert "  phase 4: steps 150-200  tau 1.000  inter-clip 40%  eligible 40+4" in text
    assert "| phase_4 | 0.61 |" in text and "hidden" not in text
    assert f"Results (tables, clips, metrics): {root}" in lines
    assert f"Curation report:                  {root_uri}/reports/curation_report.md" in lines
    assert f"Leaderboard:                      {root_uri}/reports/leaderboard.md" in lines
    assert f"Leaderboard (HTML with plots):    {root_uri}/reports/leaderboard.html" in lines
    assert lines[-1].endswith(f"(flat layout, run-1: phase_4, primary, validated): "
                              f"{root_uri}/submissions/ipvg_track1.zip")


def test_results_are_read_from_an_s3_store(s3_bucket, tmp_path, monkeypatch):
    from core.storage_s3 import S3ObjectStore
    from orchestration.demo import print_results

    endpoint, bucket, credentials = s3_bucket
    monkeypatch.chdir(tmp_path)  # nothing may be read from (or written to) a local storage root
    store = S3ObjectStore(endpoint, bucket, "team/reactid", secure=False, region="us-east-1",
                          credentials=credentials)
    _write_outputs(store)
    lines: list[str] = []
    print_results(store, ARCHIVES, lines.append)
    _check(lines, f"s3://{bucket}/team/reactid", f"s3://{bucket}/team/reactid")
    assert list(tmp_path.iterdir()) == []


def test_results_are_read_from_a_local_store(tmp_path):
    from core.storage import LocalObjectStore
    from orchestration.demo import print_results

    store = LocalObjectStore(tmp_path / "data")
    _write_outputs(store)
    lines: list[str] = []
    print_results(store, ARCHIVES, lines.append)
    root = (tmp_path / "data").resolve()
    _check(lines, str(root), str(root))  # plain paths a terminal user can open


def test_a_missing_schedule_is_left_out(tmp_path):
    from core.storage import LocalObjectStore
    from orchestration.demo import print_results
    from training.stages import SCHEDULE_KEY

    store = LocalObjectStore(tmp_path)
    _write_outputs(store)
    store.delete_prefix(SCHEDULE_KEY)
    lines: list[str] = []
    print_results(store, [], lines.append)
    assert not any("Curriculum" in line for line in lines) and "| phase_4 | 0.61 |" in "\n".join(lines)


def test_the_summary_links_the_browser_the_previews_and_a_lineage_command(tmp_path):
    from core.storage import LocalObjectStore
    from curation.previews import contact_sheet_key
    from orchestration.demo import print_results
    from training.dataset_browser import PAGE_KEY

    store = LocalObjectStore(tmp_path / "data")
    _write_outputs(store)
    store.put_bytes(PAGE_KEY, b"<!doctype html>")
    store.put_bytes(contact_sheet_key("demo-000"), b"\x89PNG")
    track1 = {"key": "submissions/track1/run1/facial_results.zip", "track": 1, "layout": "published",
              "run": "run1", "model": "phase_4", "primary": True}
    lines: list[str] = []
    print_results(store, [track1], lines.append)
    root = (tmp_path / "data").resolve()
    assert f"Dataset browser (static HTML):    {root}/reports/dataset_browser.html" in lines
    assert f"Annotated previews of demo-000:   {root}/previews/demo-000/contact_sheet.png" in lines
    assert lines[-1] == (f"Where a video came from:          reactid lineage "
                         f"{root}/submissions/track1/run1/facial_results.zip::submission/1.mp4")
