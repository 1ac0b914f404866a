import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from evaluation.errors import BenchmarkFormatError, InvalidSubmissionError
from evaluation.packaging import RunSource, package_run, package_runs
from evaluation.submission import expected_names, validate
from evaluation.video import write_video

DATA = Path(__file__).parent / "data"

TRACK1 = DATA / "ipvg" / "track1_eval.json"  # 3 samples
TRACK1_GROUPED = DATA / "ipvg" / "track1_grouped.json"  # 2 identities x 5 prompts
TRACK2 = DATA / "ipvg" / "track2_eval.json"  # timelines ending at 4 s, 3 s, 1 s


def run_dir(root: Path, video: Path, names: list[str]) -> Path:
    """A directory holding what goes under submission/, every entry a copy of ``video``."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(video, root / name)
    return root


def kinds(problems) -> list[tuple[str, str]]:
    return sorted((p.kind, p.entry) for p in problems)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory, shifting_clip, texture) -> Path:
    """4.5 s H.264 MP4, long enough for every Track 2 timeline in the sample eval file."""
    clip = shifting_clip(72, 1, 0, texture(48, 64))
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", clip, fps=16)


@pytest.fixture
def track1_zip(tmp_path, h264_video) -> Path:
    videos = run_dir(tmp_path / "run", h264_video, ["1.mp4", "2.mp4", "3.mp4"])
    return package_run(videos, 1, tmp_path / "out", eval_json=TRACK1)


def rezip(source: Path, target: Path, drop=(), extra: dict[str, bytes] | None = None) -> Path:
    """Copy a zip, leaving out ``drop`` and adding raw ``extra`` entries (names kept as given)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename not in drop:
                dst.writestr(info, src.read(info))
        for name, data in (extra or {}).items():
            dst.writestr(zipfile.ZipInfo(name), data)
    return target


def test_good_track1_zip(track1_zip):
    assert track1_zip.name == "facial_results.zip"
    with zipfile.ZipFile(track1_zip) as zf:
        assert sorted(zf.namelist()) == ["submission/1.mp4", "submission/2.mp4", "submission/3.mp4"]
    assert validate(track1_zip, 1, eval_json=TRACK1) == []
    assert validate(track1_zip, 1) == []  # without eval: a complete 1..N run


def test_good_track2_directory(tmp_path, long_video):
    root = tmp_path / "root"
    run_dir(root / "submission", long_video, ["1.mp4", "2.mp4", "3.mp4"])
    assert validate(root, 2, eval_json=TRACK2) == []


def test_video_shorter_than_its_timeline(tmp_path, h264_video, long_video):
    root = tmp_path / "root"
    run_dir(root / "submission", long_video, ["2.mp4", "3.mp4"])
    run_dir(root / "submission", h264_video, ["1.mp4"])  # 1.5 s for a timeline ending at 4 s
    assert kinds(validate(root, 2, eval_json=TRACK2)) == [
        ("shorter_than_timeline", "submission/1.mp4")
    ]


def test_missing_and_extra_files(tmp_path, track1_zip):
    broken = rezip(
        track1_zip,
        tmp_path / "facial_results.zip",
        drop={"submission/2.mp4"},
        extra={"submission/4.mp4": track1_zip.read_bytes()[:0], "notes.txt": b"hi"},
    )
    assert kinds(validate(broken, 1, eval_json=TRACK1)) == [
        ("missing_video", "submission/2.mp4"),
        ("unexpected_entry", "notes.txt"),
        ("unexpected_entry", "submission/4.mp4"),
    ]


def test_gap_in_numbering_without_eval_file(tmp_path, h264_video):
    root = tmp_path / "root"
    run_dir(root / "submission", h264_video, ["1.mp4", "3.mp4"])
    assert kinds(validate(root, 1)) == [("missing_video", "submission/2.mp4")]


@pytest.mark.parametrize(
    "name",
    [
        "submission/01.mp4",
        "submission/1.MP4",
        "submission/one.mp4",
        "submission/sub/1.mp4",
        "1.mp4",
    ],
)
def test_bad_names(tmp_path, h264_video, name):
    root = tmp_path / "root"
    run_dir(root / "submission", h264_video, ["1.mp4"])
    run_dir(root, h264_video, [name])
    problems = validate(root, 1)
    assert [(p.kind, p.entry) for p in problems] == [
        ("unexpected_entry" if not name.startswith("submission/") else "bad_name", name)
    ]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("../x.mp4", "escapes"),
        ("submission/../../x.mp4", "escapes"),
        ("/abs.mp4", "absolute"),
        ("C:/x.mp4", "absolute"),
        ("submission\\1.mp4", "backslash"),
    ],
)
def test_entries_that_escape_the_root(tmp_path, track1_zip, entry, reason):
    bad = rezip(track1_zip, tmp_path / "facial_results.zip", extra={entry: b"x"})
    problems = validate(bad, 1, eval_json=TRACK1)
    assert [(p.kind, p.entry) for p in problems] == [("unsafe_path", entry)]
    assert reason in problems[0].message


def test_symlinks_are_unsafe(tmp_path, track1_zip, h264_video):
    link = zipfile.ZipInfo("submission/link.mp4")
    link.external_attr = 0o120777 << 16
    bad = tmp_path / "facial_results.zip"
    shutil.copyfile(track1_zip, bad)
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr(link, "/etc/passwd")
    assert kinds(validate(bad, 1, eval_json=TRACK1)) == [("unsafe_path", "submission/link.mp4")]

    root = tmp_path / "root"
    run_dir(root / "submission", h264_video, ["1.mp4"])
    (root / "submission" / "2.mp4").symlink_to(h264_video)
    assert ("unsafe_path", "submission/2.mp4") in kinds(validate(root, 1))


def test_wrong_codec_container_and_undecodable(tmp_path, h264_video, shifting_clip, texture):
    import av

    root = tmp_path / "root"
    run_dir(root / "submission", h264_video, ["1.mp4"])
    clip = shifting_clip(24, 1, 0, texture(48, 64))
    write_video(root / "submission" / "2.mp4", clip, codec="mpeg4")
    with av.open(str(root / "submission" / "3.mp4"), "w", format="mov") as mov:
        stream = mov.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for image in clip:
            mov.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        mov.mux(stream.encode())
    (root / "submission" / "4.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    write_video(root / "submission" / "5.mp4", clip[:6])  # 0.375 s
    assert kinds(validate(root, 1)) == [
        ("duration", "submission/5.mp4"),
        ("not_h264", "submission/2.mp4"),
        ("not_mp4", "submission/3.mp4"),
        ("undecodable", "submission/4.mp4"),
    ]


def without_samples(mp4: bytes) -> bytes:
    """The same MP4 with every sample table emptied and no media data: an H.264 track
    (its avcC, size and timescale kept) holding zero frames."""
    import struct

    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
    # header bytes kept before the zeroed entry count(s): version/flags, and stsz's sample size
    tables = {b"stts": 8, b"stss": 8, b"ctts": 8, b"stsc": 8, b"stco": 8, b"co64": 8, b"stsz": 12}

    def rewrite(data: bytes) -> bytes:
        out, pos = b"", 0
        while pos < len(data):
            size, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + size]
            pos += size
            if kind in (b"sdtp", b"edts"):
                continue
            if kind in containers:
                body = rewrite(body)
            elif kind in tables:
                body = body[:4] + bytes(tables[kind] - 4)
            elif kind == b"mdat":
                body = b""
            out += struct.pack(">I4s", 8 + len(body), kind) + body
        return out

    return rewrite(mp4)


def test_video_with_zero_frames(tmp_path, h264_video):
    from evaluation.video import probe_video

    root = tmp_path / "root"
    run_dir(root / "submission", h264_video, ["1.mp4"])
    empty = root / "submission" / "2.mp4"
    empty.write_bytes(without_samples(h264_video.read_bytes()))
    probe = probe_video(empty)
    # a valid H.264 MP4 in every respect but its frames
    assert (probe.brand, probe.codec, probe.frames) == ("isom", "h264", 0)
    problems = validate(root, 1)
    assert kinds(problems) == [("no_frames", "submission/2.mp4")]
    assert problems[0].message == "no decodable frames"


def test_archive_name_and_not_a_zip(tmp_path, track1_zip):
    renamed = tmp_path / "results.zip"
    shutil.copyfile(track1_zip, renamed)
    assert kinds(validate(renamed, 1)) == [("archive_name", "")]
    assert kinds(validate(track1_zip, 2)) == [("archive_name", "")]
    text = tmp_path / "facial_results.zip"
    text.write_text("not a zip")
    assert kinds(validate(text, 1)) == [("not_a_zip", "")]


def test_duplicate_entries_and_the_wrong_root(tmp_path, track1_zip):
    doubled = tmp_path / "facial_results.zip"
    shutil.copyfile(track1_zip, doubled)
    with (
        zipfile.ZipFile(doubled, "a") as zf,
        zipfile.ZipFile(track1_zip) as src,
        pytest.warns(UserWarning, match="Duplicate name"),
    ):
        zf.writestr("submission/1.mp4", src.read("submission/1.mp4"))
    assert kinds(validate(doubled, 1, eval_json=TRACK1)) == [
        ("duplicate_entry", "submission/1.mp4")
    ]
    inner = tmp_path / "submission"
    inner.mkdir()
    assert kinds(validate(inner, 1)) == [("archive_root", "")]


def test_empty_submission(tmp_path):
    (tmp_path / "submission").mkdir()
    assert kinds(validate(tmp_path, 1)) == [("empty", "")]


def test_proposal_layout(tmp_path, h264_video):
    names = [f"id{i:03d}/prompt{k}.mp4" for i in (1, 2) for k in range(1, 6)]
    assert expected_names(1, "proposal", TRACK1_GROUPED) == [f"submission/{n}" for n in names]
    root = tmp_path / "root"
    run_dir(root / "submission", h264_video, names)
    assert validate(root, 1, "proposal", TRACK1_GROUPED) == []
    assert validate(root, 1, "proposal") == []
    (root / "submission" / "id002" / "prompt4.mp4").unlink()
    assert kinds(validate(root, 1, "proposal")) == [
        ("missing_video", "submission/id002/prompt4.mp4")
    ]
    with pytest.raises(BenchmarkFormatError, match="proposal layout needs 'identity'"):
        validate(root, 1, "proposal", TRACK1)
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"../up": {"img_paths": ["a.jpg"], "prompts": ["p"]}}))
    with pytest.raises(BenchmarkFormatError, match="not of the proposal's form idNNN"):
        validate(root, 1, "proposal", odd)
    with pytest.raises(BenchmarkFormatError, match="use layout='published'"):
        validate(root, 2, "proposal", TRACK2)


def test_packaging_refuses_an_invalid_run(tmp_path, h264_video):
    videos = run_dir(tmp_path / "run", h264_video, ["1.mp4", "3.mp4"])
    out = tmp_path / "out"
    with pytest.raises(InvalidSubmissionError) as info:
        package_run(videos, 1, out, eval_json=TRACK1)
    assert kinds(info.value.problems) == [("missing_video", "submission/2.mp4")]
    assert list(out.iterdir()) == []  # neither the zip nor its temporary file remains


def test_package_runs_writes_manifest(tmp_path, h264_video):
    a = run_dir(tmp_path / "a", h264_video, ["1.mp4", "2.mp4", "3.mp4"])
    b = run_dir(tmp_path / "b", h264_video, ["1.mp4", "2.mp4", "3.mp4"])
    manifest_path = package_runs(
        [RunSource("wan-curriculum", a, primary=True, description="phase 4"), RunSource("base", b)],
        1,
        tmp_path / "track1",
        eval_json=TRACK1,
    )
    manifest = json.loads(manifest_path.read_text())
    assert (
        manifest["primary"] == "wan-curriculum" and manifest["archive_name"] == "facial_results.zip"
    )
    first = manifest["runs"][0]
    archive = tmp_path / "track1" / first["archive"]
    assert first["archive"] == "wan-curriculum/facial_results.zip"
    assert first["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (first["videos"], first["primary"], manifest["runs"][1]["primary"]) == (3, True, False)


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ([], "1 to 3 runs"),
        ([RunSource(f"r{i}", Path("."), primary=i == 0) for i in range(4)], "1 to 3 runs"),
        ([RunSource("a", Path(".")), RunSource("b", Path("."))], "exactly one run must be primary"),
        ([RunSource("a", Path("."), True), RunSource("a", Path("."))], "repeat"),
        ([RunSource("../up", Path("."), True)], "run names must match"),
    ],
)
def test_package_runs_checks_the_run_list(tmp_path, runs, message):
    with pytest.raises(ValueError, match=message):
        package_runs(runs, 1, tmp_path)


def test_package_runs_reports_every_runs_problems(tmp_path, h264_video):
    good = run_dir(tmp_path / "good", h264_video, ["1.mp4", "2.mp4", "3.mp4"])
    bad = run_dir(tmp_path / "bad", h264_video, ["1.mp4"])
    with pytest.raises(InvalidSubmissionError) as info:
        package_runs(
            [RunSource("good", good, True), RunSource("bad", bad)],
            1,
            tmp_path / "t1",
            eval_json=TRACK1,
        )
    assert kinds(info.value.problems) == [
        ("missing_video", "bad:submission/2.mp4"),
        ("missing_video", "bad:submission/3.mp4"),
    ]
    assert not (tmp_path / "t1" / "manifest.json").exists()
