from fractions import Fraction

import numpy as np
import pytest

from curation import video_io as vio
from curation.clip_writing import Segment, write_segments


def _write(path, n=24, size=(96, 64), fps=12, seed=0):
    rng = np.random.default_rng(seed)
    writer = vio.ClipWriter(path, Fraction(fps), size[0], size[1], crf=18, preset="veryfast")
    frames = []
    for k in range(n):
        f = np.full((size[1], size[0], 3), (k * 9) % 255, np.uint8)
        f[:, : size[0] // 2] = rng.integers(0, 255, 3)
        writer.write(f)
        frames.append(f)
    writer.close()
    return frames


def test_probe_reads_properties(tmp_path):
    path = tmp_path / "ok.mp4"
    _write(path, n=36)
    info = vio.probe(path)
    assert (info.width, info.height, info.codec, info.frame_count) == (96, 64, "h264", 36)
    assert info.fps == pytest.approx(12.0)
    assert info.duration_s == pytest.approx(3.0)
    assert info.rotation == 0


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p, good: p.write_bytes(b""), vio.EMPTY_FILE),
        (lambda p, good: p.write_text("not a video\n" * 50), vio.NOT_A_VIDEO),
        (lambda p, good: p.write_bytes(good.read_bytes()[: good.stat().st_size // 3]), vio.TRUNCATED),
    ],
)
def test_probe_quarantine_reasons(tmp_path, make, reason):
    good = tmp_path / "good.mp4"
    _write(good, n=48)
    bad = tmp_path / "bad.mp4"
    make(bad, good)
    with pytest.raises(vio.ProbeError) as err:
        vio.probe(bad)
    assert err.value.reason == reason
    assert str(bad) not in err.value.detail  # the reason is readable, not a path dump


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda good: b"", vio.EMPTY_FILE),
        (lambda good: b"not a video\n" * 50, vio.NOT_A_VIDEO),
        (lambda good: good[: len(good) // 3], vio.TRUNCATED),
        (lambda good: good, None),
    ],
)
def test_probe_reads_a_stream_like_a_file(tmp_path, make, reason):
    """A video of a store pool is probed through `ObjectStore.open_stream`: same properties,
    same quarantine reasons as the file on disk."""
    from core.storage import LocalObjectStore

    good = tmp_path / "good.mp4"
    _write(good, n=48)
    store = LocalObjectStore(tmp_path / "store")
    store.put_bytes("pool/s/v.mp4", make(good.read_bytes()))
    on_disk = store.path("pool/s/v.mp4")
    results = []
    for opener in (lambda: store.open_stream("pool/s/v.mp4"), lambda: open(on_disk, "rb")):
        with opener() as stream:
            try:
                results.append(vio.probe(stream))
            except vio.ProbeError as exc:
                results.append(exc.reason)
    expected = reason if reason is not None else vio.probe(on_disk)
    assert results == [expected, expected]


def test_probe_missing_file(tmp_path):
    with pytest.raises(vio.ProbeError) as err:
        vio.probe(tmp_path / "nope.mp4")
    assert err.value.reason == vio.MISSING_FILE


def test_decode_downscales_subsamples_and_counts_passes(tmp_path):
    path = tmp_path / "v.mp4"
    _write(path, n=24, size=(96, 64), fps=12)
    before = vio.DECODE_STATS.total_passes()
    batch = vio.decode_frames(path, width=48, sample_fps=6)
    assert vio.DECODE_STATS.total_passes() == before + 1
    assert batch.frames.shape == (12, 32, 48, 3)
    assert list(batch.indices) == list(range(0, 24, 2))
    assert batch.scale == pytest.approx(0.5)


def test_write_segments_one_pass_exact_frames_and_crop(tmp_path):
    src = tmp_path / "src.mp4"
    frames = _write(src, n=30)
    segs = [
        Segment(0, 10, tmp_path / "a.mp4"),
        Segment(10, 30, tmp_path / "b.mp4", crop=(0, 0, 48, 32)),
    ]
    before = vio.DECODE_STATS.total_passes()
    written = write_segments(src, segs, crf=10)
    assert vio.DECODE_STATS.total_passes() == before + 1
    assert written == [10, 20]
    a, b = vio.probe(tmp_path / "a.mp4"), vio.probe(tmp_path / "b.mp4")
    assert (a.frame_count, a.width, a.codec) == (10, 96, "h264")
    assert (b.frame_count, b.width, b.height) == (20, 48, 32)
    first_b = vio.decode_frames(tmp_path / "b.mp4").frames[0].astype(int)
    assert np.abs(first_b - frames[10][:32, :48]).mean() < 6  # the crop holds the right pixels
    assert not list(tmp_path.glob(".*partial"))


def test_clip_writer_rejects_wrong_frame_size(tmp_path):
    writer = vio.ClipWriter(tmp_path / "x.mp4", Fraction(10), 64, 48, crf=20, preset="veryfast")
    with pytest.raises(ValueError, match="does not fit"):
        writer.write(np.zeros((10, 10, 3), np.uint8))
    writer.close()


def test_decoder_gives_each_frame_its_time_and_batches_carry_times(tmp_path):
    path = tmp_path / "v.mp4"
    _write(path, n=24, size=(96, 64), fps=12)
    decoded = list(vio.VideoDecoder(path, width=48))
    assert [d.index for d in decoded] == list(range(24))
    assert [d.time_s for d in decoded] == pytest.approx([k / 12 for k in range(24)])
    assert all(d.duration_s == pytest.approx(1 / 12) for d in decoded)
    assert [i for i, _ in vio.iter_frames(path, sample_fps=4, start_frame=3)] == [3, 6, 9, 12, 15, 18, 21]
    batch = vio.decode_frames(path, sample_fps=6)
    assert list(batch.times) == pytest.approx(list(batch.indices / 12))
    windows = list(vio.VideoDecoder(path, sample_fps=6).windows(5))
    assert [len(w.frames) for w in windows] == [5, 5, 2]
    assert list(np.concatenate([w.indices for w in windows])) == list(batch.indices)


def test_a_hand_built_batch_is_timed_by_its_rate():
    batch = vio.FrameBatch(np.zeros((3, 2, 2, 3), np.uint8), np.array([0, 2, 4]), 10.0, (2, 2))
    assert list(batch.times) == pytest.approx([0.0, 0.2, 0.4])
    assert list(batch.subsample(2).times) == pytest.approx([0.0, 0.4])


def test_decoder_scales_each_frame_as_pyav_does(tmp_path):
    """The pass shares one swscale context across its frames: above BASE_WIDTH the pixels are
    those of each frame's own PyAV conversion; at BASE_WIDTH or below, that conversion at
    BASE_WIDTH area-averaged to the width asked for; at the source size, the source's."""
    import av
    import cv2

    path = tmp_path / "scaled.mp4"
    _write(path, n=20, size=(480, 272))
    assert vio.BASE_WIDTH == 320
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        wide = [f.to_ndarray(width=400, height=226, format="rgb24") for f in frames]
        base = [f.to_ndarray(width=320, height=182, format="rgb24") for f in frames]
        full = [f.to_ndarray(format="rgb24") for f in frames]
    decoded = list(vio.VideoDecoder(path, width=400))
    assert [d.image.shape for d in decoded] == [(226, 400, 3)] * 20
    assert all(np.array_equal(d.image, o) for d, o in zip(decoded, wide, strict=True))
    assert all(np.array_equal(d.image, o) for d, o in zip(vio.VideoDecoder(path, width=320), base, strict=True))
    small = [cv2.resize(b, (64, 36), interpolation=cv2.INTER_AREA) for b in base]
    decoded = list(vio.VideoDecoder(path, width=64))
    assert [d.image.shape for d in decoded] == [(36, 64, 3)] * 20
    assert all(np.array_equal(d.image, o) for d, o in zip(decoded, small, strict=True))
    assert all(np.array_equal(d.image, o) for d, o in zip(vio.VideoDecoder(path), full, strict=True))


def test_a_frame_at_a_width_is_the_same_whatever_else_its_pass_converts(tmp_path):
    """The scene pass converts each frame at 160, 320 and 96 px, a clip_quality pass at 320
    and 96, a signature pass at 96 alone: each width's pixels are the same in all of them,
    and a frame given at BASE_WIDTH is the caller's own copy."""
    path = tmp_path / "widths.mp4"
    _write(path, n=12, size=(640, 360))
    alone = {w: [d.image for d in vio.VideoDecoder(path, width=w)] for w in (96, 160, 320)}
    together: dict[int, list] = {96: [], 160: [], 320: []}
    for _, image in vio.VideoDecoder(path, width=160).lazy_frames():
        together[160].append(image())
        image(320)[:] = 0  # the caller's copy: the frame's other widths do not see this
        together[320].append(image(320))
        together[96].append(image(96))
    for w in (96, 160, 320):
        assert all(np.array_equal(a, b) for a, b in zip(alone[w], together[w], strict=True)), w
