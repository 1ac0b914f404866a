import numpy as np
import pytest

from evaluation.errors import VideoDecodeError
from evaluation.video import probe_video, read_frames, uniform_indices, write_video


def test_uniform_indices_match_opens2v_sampling():
    assert uniform_indices(81, 32)[:4].tolist() == [0, 2, 5, 7]
    assert uniform_indices(81, 32)[-1] == 80
    assert uniform_indices(3, 5).tolist() == [0, 0, 1, 1, 2]
    with pytest.raises(ValueError):
        uniform_indices(0, 4)


def test_write_probe_and_read(tmp_path, h264_video, shifting_clip, texture):
    probe = probe_video(h264_video)
    assert (probe.codec, probe.frames, probe.width, probe.height) == ("h264", 24, 64, 48)
    assert probe.brand in {"isom", "mp42"} and probe.duration_s == pytest.approx(1.5)
    frames = read_frames(h264_video)
    assert frames.shape == (24, 48, 64, 3)
    picked = read_frames(h264_video, [5, 1, 5])
    np.testing.assert_array_equal(picked[0], frames[5])
    np.testing.assert_array_equal(picked[1], frames[1])
    original = shifting_clip(24, 2, 0, texture(48, 64))
    assert np.abs(frames.astype(int) - original.astype(int)).mean() < 8  # lossy but close


def test_read_errors(tmp_path, h264_video):
    with pytest.raises(VideoDecodeError, match="not in video"):
        read_frames(h264_video, [99])
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoDecodeError, match="cannot decode"):
        read_frames(junk)
    with pytest.raises(VideoDecodeError):
        probe_video(junk)


def test_write_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.float32))
    assert list(tmp_path.iterdir()) == []
