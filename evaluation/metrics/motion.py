"""Motion metrics: OpenS2V motion amplitude and frame-interpolation motion smoothness.

* :class:`MotionAmplitude` — OpenS2V-Eval v1.1 ``get_motion_amplitude.py`` (same as v1.0's
  ``motion_fb``): OpenCV Farnebäck flow between every pair of consecutive frames (all frames,
  pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2, flags 0), each
  flow map resized with INTER_AREA to width 16 (height ``int(H * 16 / W)``), the maps averaged,
  then the mean over every element — x and y components together, signed — and its absolute
  value. Signed means opposite motions cancel: a pan of (+2, -2) px/frame scores ~0.
  OpenS2V decodes RGB frames and converts them with ``COLOR_BGR2GRAY``, which swaps the
  red/blue luma weights; that conversion is kept so values match theirs.
* :func:`interpolation_smoothness` — VBench's motion smoothness: keep frames 0, 2, 4, …,
  predict each odd frame from its even neighbours, score ``(255 - mean |pred - true|) / 255``
  over the odd frames that have both neighbours.
  :class:`MotionSmoothnessFlowWarpProxy` predicts with Farnebäck flow warping (embedded,
  a proxy); :class:`AMTInterpolator` is VBench's AMT-S network (pretrained) loaded through the
  ``vbench`` package.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from evaluation.errors import MetricUnavailableError
from evaluation.metrics.base import MetricSpec, MetricValue, SampleContext, check_frames

FARNEBACK = dict(
    pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0
)
FLOW_MAP_WIDTH = 16

# (prev RGB, next RGB) -> predicted middle RGB, all uint8 (H, W, 3)
Interpolator = Callable[[np.ndarray, np.ndarray], np.ndarray]


def farneback_flow(prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
    """Dense Farnebäck flow with OpenS2V's parameters.

    Args:
        prev_gray: uint8 (H, W).
        next_gray: uint8 (H, W).

    Returns:
        float32 (H, W, 2): (dx, dy) such that ``prev(p)`` moves to ``next(p + flow(p))``.
    """
    import cv2

    return cv2.calcOpticalFlowFarneback(prev_gray, next_gray, None, **FARNEBACK)


def motion_amplitude(frames: np.ndarray) -> float:
    """OpenS2V motion amplitude of a clip (see module docstring).

    Args:
        frames: uint8 (T, H, W, 3) RGB, T >= 2, every frame of the video.

    Returns:
        Absolute mean signed flow in pixels per frame at the original resolution.
    """
    import cv2

    frames = check_frames(frames, minimum=2)
    height, width = frames.shape[1:3]
    map_height = int(height * (FLOW_MAP_WIDTH / width))
    if map_height < 1:
        raise ValueError(f"{width}x{height} frames are too wide for a {FLOW_MAP_WIDTH}-px flow map")
    # BGR2GRAY on RGB input on purpose: it is what OpenS2V's script does.
    grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    maps = [
        cv2.resize(farneback_flow(a, b), (FLOW_MAP_WIDTH, map_height), interpolation=cv2.INTER_AREA)
        for a, b in zip(grays[:-1], grays[1:], strict=True)
    ]
    return float(abs(np.mean(np.mean(np.stack(maps), axis=0))))


def interpolation_smoothness(frames: np.ndarray, interpolate: Interpolator) -> float:
    """VBench motion smoothness with a given frame interpolator.

    Args:
        frames: uint8 (T, H, W, 3) RGB, T >= 3.
        interpolate: predicts the middle frame from its two neighbours.

    Returns:
        ``(255 - mean absolute error) / 255`` over predicted odd frames, in [0, 1].
    """
    frames = check_frames(frames, minimum=3)
    errors = []
    for odd in range(1, frames.shape[0] - 1, 2):
        predicted = interpolate(frames[odd - 1], frames[odd + 1])
        diff = np.abs(predicted.astype(np.int16) - frames[odd].astype(np.int16))
        errors.append(float(diff.mean()))
    return (255.0 - float(np.mean(errors))) / 255.0


def flow_warp_interpolate(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Predict the middle frame by warping both neighbours half-way along Farnebäck flow.

    The middle frame at pixel p is sampled from ``prev`` at ``p - flow_fwd(p) / 2`` and from
    ``next`` at ``p - flow_bwd(p) / 2`` (flow looked up at p, exact for smooth motion), and
    the two warps are averaged.

    Args:
        prev: uint8 (H, W, 3) RGB.
        nxt: uint8 (H, W, 3) RGB.

    Returns:
        uint8 (H, W, 3) RGB prediction.
    """
    import cv2

    g0 = cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(nxt, cv2.COLOR_RGB2GRAY)
    forward, backward = farneback_flow(g0, g1), farneback_flow(g1, g0)
    height, width = g0.shape
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )

    def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        return cv2.remap(
            image,
            grid_x - 0.5 * flow[..., 0],
            grid_y - 0.5 * flow[..., 1],
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        ).astype(np.float32)

    middle = 0.5 * (warp(prev, forward) + warp(nxt, backward))
    return np.clip(np.rint(middle), 0, 255).astype(np.uint8)


class MotionAmplitude:
    """OpenS2V MotionAmplitude (embedded: OpenCV only, the benchmark's own definition)."""

    spec = MetricSpec(
        name="motion_amplitude",
        key="motion_amplitude",
        backend="embedded",
        definition="OpenS2V-Eval v1.1 get_motion_amplitude.py (Farneback motion_fb)",
        is_proxy=False,
    )

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        return MetricValue(self.spec, motion_amplitude(frames), f"{len(frames)} frames")


class MotionSmoothnessFlowWarpProxy:
    """VBench-style motion smoothness with Farnebäck warping instead of AMT (a proxy)."""

    spec = MetricSpec(
        name="motion_smoothness_flowwarp_proxy",
        key="motion_smoothness",
        backend="embedded",
        definition="VBench motion_smoothness scoring, Farneback flow-warp interpolation "
        "instead of AMT-S",
        is_proxy=True,
    )

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        value = interpolation_smoothness(frames, flow_warp_interpolate)
        return MetricValue(self.spec, value, f"{(len(frames) - 1) // 2} interpolated frames")


class MotionSmoothnessVBench:
    """VBench motion smoothness with AMT-S interpolation (pretrained).

    OpenS2V-Eval v1.1 itself measures smoothness with Q-Align (see
    :mod:`evaluation.metrics.qalign`); this is VBench's definition, reported as such.
    """

    spec = MetricSpec(
        name="motion_smoothness_vbench_amt",
        key="motion_smoothness",
        backend="pretrained",
        definition="VBench motion_smoothness (AMT-S frame interpolation)",
        is_proxy=True,
    )

    def __init__(self, interpolator: Interpolator) -> None:
        self.interpolate = interpolator

    def __call__(self, frames: np.ndarray, context: SampleContext) -> MetricValue:
        return MetricValue(self.spec, interpolation_smoothness(frames, self.interpolate))


class AMTInterpolator:
    """AMT-S frame interpolation loaded through the ``vbench`` package's bundled AMT code.

    Args:
        config_path: AMT-S network config (VBench ships ``amt_model/AMT-S.yaml``).
        checkpoint_path: ``amt-s.pth`` with a ``state_dict`` entry.
        device: torch device string.

    Raises:
        MetricUnavailableError: when ``vbench`` (and its omegaconf dependency) is not
            installed; VBench needs torchvision, which has no CPU build on this platform.
    """

    def __init__(self, config_path: str, checkpoint_path: str, device: str = "cpu") -> None:
        try:
            import torch
            from omegaconf import OmegaConf
            from vbench.third_party.amt.utils.build_utils import build_from_cfg
            from vbench.third_party.amt.utils.utils import InputPadder, img2tensor, tensor2img
        except ImportError as exc:
            raise MetricUnavailableError(
                "VBench motion smoothness needs the 'vbench' package (bundled AMT network, "
                "omegaconf, torchvision) and AMT-S weights; use "
                "motion_smoothness_flowwarp_proxy or the Q-Align backend instead"
            ) from exc
        self._torch, self._padder_cls = torch, InputPadder
        self._to_tensor, self._to_image = img2tensor, tensor2img
        self.device = device
        self.model = build_from_cfg(OmegaConf.load(config_path).network)
        state = torch.load(checkpoint_path, map_location="cpu")
        self.model.load_state_dict(state["state_dict"])
        self.model.to(device).eval()
        self.embt = torch.tensor(0.5).float().view(1, 1, 1, 1).to(device)

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        in0 = self._to_tensor(prev).to(self.device)
        in1 = self._to_tensor(nxt).to(self.device)
        # VBench pads to a multiple of 16 at scale 1 (its CPU setting).
        padder = self._padder_cls(in0.shape, 16)
        in0, in1 = padder.pad(in0, in1)
        with self._torch.no_grad():
            pred = self.model(in0, in1, self.embt, scale_factor=1.0, eval=True)["imgt_pred"]
        return self._to_image(padder.unpad(pred.cpu()))
