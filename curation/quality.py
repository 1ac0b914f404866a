"""Per-clip quality analysers. All of them read the same decoded `FrameBatch`es.

A clip is analysed window by window so that memory does not grow with its length: motion
and text stream over every sampled frame (`merge_motion` and `TextScanner` combine the
windows exactly), technical quality and aesthetics read a bounded, evenly spread sample of
frames (`FrameSpread`). A clip that fits in one window is analysed exactly as a whole.

- motion: optical flow with camera motion removed; the score is the foreground's
  residual flow (paper App. B.1 separates foreground and background flow; RAFT there,
  OpenCV Farnebäck or DIS here);
- text: OCR boxes with confidence above a threshold flag frames; the clip's crop is the
  largest rectangle free of every flagged box (paper App. B.1, content purity);
- technical: classical measures, named as such (Laplacian sharpness, exposure,
  Immerkær noise sigma, 8x8 blockiness).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from curation.video_io import FrameBatch


@dataclass(frozen=True)
class MotionScore:
    foreground: float  # mean residual flow inside the foreground, px per source frame at flow width
    camera: float  # mean magnitude of the fitted camera (background) motion, same units
    foreground_fraction: float  # share of pixels classed as foreground
    pairs: int


DIS_PRESETS = ("ultrafast", "fast", "medium")


def _flow_fn(method: str, dis_preset: str = "fast"):
    import cv2

    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    if method == "dis":
        if dis_preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {dis_preset!r}; expected one of {', '.join(DIS_PRESETS)}")
        dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{dis_preset.upper()}"))
        return lambda a, b: dis.calc(a, b, None)
    raise ValueError(f"unknown flow method {method!r}; expected 'farneback' or 'dis'")


@functools.lru_cache(maxsize=8)
def _flow_grids(h: int, w: int, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """camera_flow's sample points and pixel coordinates for one flow size (every pair of a
    clip has the same size: built once, read-only)."""
    ys, xs = np.mgrid[grid // 2 : h : grid, grid // 2 : w : grid]
    ys, xs = ys.ravel(), xs.ravel()
    src = np.stack([xs, ys], 1).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for a in (ys, xs, src, yy, xx):
        a.setflags(write=False)
    return ys, xs, src, yy, xx


def camera_model(flow: np.ndarray, grid: int = 12) -> tuple[list[float], list[float]] | None:
    """Fit a similarity transform (camera pan/zoom/roll) to the flow field with RANSAC on a
    `grid`-pixel lattice of its points. flow: (H, W, 2) -> the 2x3 transform's rows, or None
    when no transform fits."""
    import cv2

    h, w = flow.shape[:2]
    ys, xs, src, _, _ = _flow_grids(h, w, grid)
    model, _ = cv2.estimateAffinePartial2D(src, src + flow[ys, xs], method=cv2.RANSAC, ransacReprojThreshold=1.0)
    return None if model is None else (model[0].tolist(), model[1].tolist())


def _camera_components(model: tuple[list[float], list[float]], h: int, w: int, grid: int = 12,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The flow a camera transform explains at every pixel, as x and y components (H, W) float32."""
    (a, b, c), (d, e, f) = model
    _, _, _, yy, xx = _flow_grids(h, w, grid)
    return (a - 1.0) * xx + b * yy + c, d * xx + (e - 1.0) * yy + f


def camera_flow(flow: np.ndarray, grid: int = 12) -> np.ndarray:
    """The flow the fitted camera motion (`camera_model`) explains at every pixel.
    flow: (H, W, 2) -> (H, W, 2)."""
    model = camera_model(flow, grid)
    if model is None:
        return np.zeros_like(flow)
    return np.stack(_camera_components(model, *flow.shape[:2], grid), -1)


def motion_score(
    batch: FrameBatch, *, flow_width: int, method: str, foreground_px: float, min_foreground_fraction: float,
    pair_stride: int = 1, first_pair: int = 0, dis_preset: str = "fast",
) -> MotionScore:
    """Foreground motion of a clip.

    For each pair of consecutive sampled frames: flow at `flow_width`, minus the fitted
    camera motion; pixels whose residual exceeds `foreground_px` (per source frame) are
    foreground after a morphological opening. A pair whose foreground covers less than
    `min_foreground_fraction` of the frame has no moving subject (what remains is flow
    error at edges under camera motion) and scores 0. Scores are averaged over pairs.

    With `pair_stride` n, only every n-th pair is measured (pairs (0, 1), (n, n + 1), ...;
    pair k of this batch is pair `first_pair + k` of the clip, so windows of one clip pick the
    same pairs as one pass): the flow is most of the cost, and the mean over a clip's pairs
    changes little (bench/curation.py reports the correlation with every pair).

    `method` "dis" runs OpenCV's DIS flow at `dis_preset`; its ultrafast preset costs about a
    tenth of Farneback's flow here and scores camera-only clips closer to 0 (bench/curation.py
    measures both against the demo pools' ground truth).
    """
    import cv2

    if pair_stride < 1:
        raise ValueError(f"pair_stride must be >= 1, got {pair_stride}")
    pairs = [k for k in range(len(batch.frames) - 1) if (first_pair + k) % pair_stride == 0]
    if not pairs:
        return MotionScore(0.0, 0.0, 0.0, 0)
    flow_fn = _flow_fn(method, dis_preset)
    h = max(8, int(round(batch.frames.shape[1] * flow_width / batch.frames.shape[2])))
    grays: dict[int, np.ndarray] = {}

    def gray(i: int) -> np.ndarray:
        if i not in grays:
            # luma first: the resize then moves a third of the bytes
            luma = cv2.cvtColor(batch.frames[i], cv2.COLOR_RGB2GRAY)
            grays[i] = luma if luma.shape == (h, flow_width) else cv2.resize(luma, (flow_width, h), interpolation=cv2.INTER_AREA)
        return grays[i]

    kernel = np.ones((3, 3), np.uint8)
    margin = max(4, int(round(0.06 * flow_width)))
    inner = (slice(margin, -margin), slice(margin, -margin))
    fg_scores, cam_scores, fg_fracs = [], [], []
    for k in pairs:
        gap = max(1, int(batch.indices[k + 1] - batch.indices[k]))
        flow = flow_fn(gray(k), gray(k + 1))
        if gap > 1:
            flow /= gap
        grays.pop(k - 1, None)
        model = camera_model(flow)
        fx, fy = flow[..., 0], flow[..., 1]
        if model is None:
            cam_x = cam_y = np.zeros_like(fx)
        else:
            cam_x, cam_y = _camera_components(model, *flow.shape[:2])
        # Flow at the frame border is unreliable under camera motion (content enters and
        # leaves there), so the border never counts as foreground.
        residual = cv2.magnitude(fx[inner] - cam_x[inner], fy[inner] - cam_y[inner])
        fg = cv2.morphologyEx((residual > foreground_px).view(np.uint8), cv2.MORPH_OPEN, kernel).view(bool)
        frac = float(np.count_nonzero(fg)) / fg.size
        fg_fracs.append(frac)
        fg_scores.append(float(residual[fg].mean()) if frac >= min_foreground_fraction else 0.0)
        cam_scores.append(float(cv2.magnitude(cam_x, cam_y).mean()) if model is not None else 0.0)
    return MotionScore(float(np.mean(fg_scores)), float(np.mean(cam_scores)), float(np.mean(fg_fracs)), len(fg_scores))


def merge_motion(parts: list[MotionScore]) -> MotionScore:
    """The motion of a clip from the motion of its windows (each window starting with the last
    frame of the one before, so that every consecutive pair is counted once): pair-weighted means."""
    pairs = sum(p.pairs for p in parts)
    if not pairs:
        return MotionScore(0.0, 0.0, 0.0, 0)

    def mean(attr: str) -> float:
        return float(sum(getattr(p, attr) * p.pairs for p in parts) / pairs)

    return MotionScore(mean("foreground"), mean("camera"), mean("foreground_fraction"), pairs)


@dataclass(frozen=True)
class TextScan:
    frames_scanned: int
    frames_flagged: int
    boxes: list[tuple[int, int, int, int]]  # flagged text boxes (x0, y0, x1, y1), source pixels
    texts: list[str]
    crop: tuple[int, int, int, int]  # largest text-free rectangle (x, y, w, h), source pixels
    text_free_area: float  # crop area / frame area

    @property
    def has_text(self) -> bool:
        return self.frames_flagged > 0


@functools.lru_cache(maxsize=2)
def _rapidocr(max_side: int):
    """RapidOCR (PP-OCR ONNX models shipped in the wheel). Its default detector input
    scales the short side up to 736 px; capping the long side at the analysis frame size
    reads frames at their own resolution: ~5x faster and fewer phantom glyphs.

    One ONNX Runtime thread per session: the execution engine's workers are the parallelism
    (threads per worker only contend for the same cores, about 2x slower per frame here), and
    scores then do not depend on the machine's core count."""
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(det_limit_side_len=max_side, det_limit_type="max", intra_op_num_threads=1, inter_op_num_threads=1)


def largest_free_rectangle(
    width: int, height: int, boxes: list[tuple[int, int, int, int]], cell: int = 4
) -> tuple[int, int, int, int]:
    """The largest axis-aligned rectangle inside (width, height) touching no box.

    Classic maximal-rectangle-in-a-histogram over a grid of `cell`-pixel cells; boxes
    are grown to whole cells so the crop never touches text. Returns (x, y, w, h) with
    even w and h (H.264 with 4:2:0 chroma needs them).
    """
    gw, gh = max(1, width // cell), max(1, height // cell)
    blocked = np.zeros((gh, gw), bool)
    for x0, y0, x1, y1 in boxes:
        cx0, cy0 = max(0, int(x0) // cell), max(0, int(y0) // cell)
        cx1, cy1 = min(gw, -(-int(x1) // cell)), min(gh, -(-int(y1) // cell))
        blocked[cy0:cy1, cx0:cx1] = True
    heights = np.zeros(gw, int)
    best = (0, 0, 0, 0, 0)  # area, x, y, w, h in cells
    for row in range(gh):
        heights = np.where(blocked[row], 0, heights + 1)
        stack: list[int] = []
        for col in range(gw + 1):
            cur = heights[col] if col < gw else 0
            while stack and heights[stack[-1]] >= cur:
                top = stack.pop()
                left = stack[-1] + 1 if stack else 0
                area = int(heights[top]) * (col - left)
                if area > best[0]:
                    best = (area, left, row - int(heights[top]) + 1, col - left, int(heights[top]))
            stack.append(col)
    _, x, y, w, h = best
    x, y, w, h = x * cell, y * cell, w * cell, h * cell
    if x + w == gw * cell:  # the last partial cell at the right/bottom edge is free too
        w = width - x if not any(b[2] > gw * cell for b in boxes) else w
    if y + h == gh * cell:
        h = height - y if not any(b[3] > gh * cell for b in boxes) else h
    return x, y, w - w % 2, h - h % 2


class TextScanner:
    """Text overlays of a clip, read window by window (`add`), summed up by `result`.

    Every `every`-th frame goes through the text detector; a frame is flagged when a box
    reads (recogniser confidence above `confidence`) as at least `min_chars` letters or
    digits and is at most `max_line_height` of the frame tall. The recogniser reads solid
    shapes as glyphs ('■', '口', '01') with high confidence; overlay text is lines of several
    thin characters.

    Recognition costs more than detection, and an overlay stays in place for many frames, so
    a detected box is read only when it reaches outside the text already found: a box whose
    cells (`cell` px, the grid of `largest_free_rectangle`) all lie in the cells of boxes read
    as text adds nothing to the crop, and its frame counts as flagged without reading it again.
    The crop is therefore exactly the one of reading every box, at the cost of one reading per
    place text appears. Boxes too tall for a text line are left unread: they never flag.

    Most frames carry no text, and the detector costs about the square of the frame's side:
    with `gate_width`, it first looks at a frame wider than that at that width (160 of 320: a
    quarter of the cost), and only a frame where its text probability map exceeds
    `gate_threshold` somewhere is detected at full size and read. Text the detector cannot see
    at that width is missed; None turns the gate off.

    An overlay gives the gate about the same box in every frame it shows in. The gate boxes
    of a frame whose full-size detection found only text (read now or known) are remembered;
    a later frame whose gate boxes all lie inside remembered ones (`gate_slack` gate pixels
    of slack) holds that text again: it counts as flagged without the full-size detection,
    which could only find boxes inside the known text. A box the gate sees anywhere else
    (new text, a longer line) sends the frame to full-size detection as before.
    """

    def __init__(self, *, every: int, confidence: float, min_chars: int, max_line_height: float,
                 gate_width: int | None = None, gate_threshold: float = 0.3, cell: int = 4, gate_slack: int = 2) -> None:
        self.every, self.confidence, self.min_chars, self.gate_threshold = every, confidence, min_chars, gate_threshold
        self.max_line_height, self.cell, self.gate_width, self.gate_slack = max_line_height, cell, gate_width, gate_slack
        self.gated = 0  # frames the downscaled look found free of text
        self.gate_known = 0  # frames the downscaled look found holding known text only
        self._gate_text: list[tuple[int, int, int, int]] = []  # gate boxes (source px) of known text
        self.source_size: tuple[int, int] | None = None  # (width, height), from the first batch
        self._text_cells = np.zeros((0, 0), bool)
        self.scanned = self.flagged = self.boxes_read = 0
        self.boxes: list[tuple[int, int, int, int]] = []
        self.texts: list[str] = []

    def _cells(self, box: tuple[int, int, int, int]) -> tuple[slice, slice]:
        gh, gw = self._text_cells.shape
        x0, y0, x1, y1 = box
        return (slice(max(0, y0 // self.cell), min(gh, -(-y1 // self.cell))),
                slice(max(0, x0 // self.cell), min(gw, -(-x1 // self.cell))))

    def _known(self, box: tuple[int, int, int, int]) -> bool:
        gh, gw = self._text_cells.shape
        if box[2] > gw * self.cell or box[3] > gh * self.cell:
            return False  # reaches into the partial cells at the edge, which the crop treats apart
        cells = self._text_cells[self._cells(box)]
        return bool(cells.size) and bool(cells.all())

    def add(self, batch: FrameBatch) -> None:
        """Scan every `every`-th frame of the batch (windows a multiple of `every` frames long
        scan the same frames as one pass over the clip)."""
        if self.source_size is None:
            self.source_size = src_w, src_h = batch.source_size
            self._text_cells = np.zeros((max(1, src_h // self.cell), max(1, src_w // self.cell)), bool)
        engine = _rapidocr(int(max(batch.frames.shape[1:3])))
        inv = 1.0 / batch.scale
        gate = self.gate_width is not None and batch.frames.shape[2] > self.gate_width
        for frame in batch.frames[:: self.every]:
            self.scanned += 1
            gate_boxes = None
            if gate:
                gate_boxes = self._gate_boxes(engine, frame, inv)
                if gate_boxes is None:
                    self.gated += 1
                    continue
                if gate_boxes and all(self._known_at_gate(g, frame.shape[1] * inv / self.gate_width) for g in gate_boxes):
                    self.gate_known += 1
                    self.flagged += 1
                    continue
            # Detector only: a frame without boxes is done here.
            quads, _ = engine(frame, use_cls=False, use_rec=False)
            unread, text_boxes, only_text = [], [], True
            for quad in quads or []:
                quad = np.asarray(quad, np.float32)
                box = self._line_box(quad, inv)
                if box is None:
                    continue
                if self._known(box):
                    text_boxes.append(box)
                else:
                    unread.append((quad, box))
            if unread:
                # Overlays are upright: the 180-degree angle classifier adds cost and no recall.
                crops = engine.get_crop_img_list(frame, [quad for quad, _ in unread])
                read, _ = engine.text_rec(crops)
                self.boxes_read += len(unread)
                for (_, box), (text, score, *_) in zip(unread, read, strict=True):
                    score = float(score)
                    if score <= self.confidence or score < engine.text_score or sum(ch.isalnum() for ch in str(text)) < self.min_chars:
                        only_text = False
                        continue
                    self.boxes.append(box)
                    self.texts.append(str(text))
                    self._text_cells[self._cells(box)] = True
                    text_boxes.append(box)
            self.flagged += bool(text_boxes)
            if gate_boxes and only_text:
                self._gate_text.extend(g for g in gate_boxes if any(_overlap(g, t) for t in text_boxes))

    def _line_box(self, quad: np.ndarray, inv: float) -> tuple[int, int, int, int] | None:
        """A detected quad (frame px) as a box in source px; None when too tall for a text line."""
        pts = quad * inv
        if pts[:, 1].max() - pts[:, 1].min() > self.max_line_height * self.source_size[1]:
            return None
        return int(pts[:, 0].min()), int(pts[:, 1].min()), int(np.ceil(pts[:, 0].max())), int(np.ceil(pts[:, 1].max()))

    def _gate_boxes(self, engine, frame: np.ndarray, inv: float) -> list[tuple[int, int, int, int]] | None:
        """The places the text detector sees text in the frame at `gate_width`: bounding boxes
        (source px, text-line height only; possibly none) of the regions of its probability map
        above `gate_threshold`; None when no pixel is.

        The detector's own boxes are not used here: at this width the kernel of a small text
        line is 2-4 pixels tall and its box-size and box-score filters drop it, while its map
        still marks it (subtitles on real footage were missed so); a text-free frame's map stays
        near 0."""
        import cv2

        h, w = frame.shape[:2]
        small = cv2.resize(frame, (self.gate_width, max(8, round(h * self.gate_width / w))), interpolation=cv2.INTER_AREA)
        det = engine.text_det
        prob = det.infer(det.get_preprocess(max(small.shape[:2]))(small))[0][0, 0]  # (H', W'): sides resized to multiples of 32
        mask = (prob > self.gate_threshold).astype(np.uint8)
        if not mask.any():
            return None
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        sx, sy = w / prob.shape[1] * inv, h / prob.shape[0] * inv  # map px -> source px
        boxes = []
        for x, y, bw, bh, _ in stats[1:n]:
            box = (int(x * sx), int(y * sy), int(np.ceil((x + bw) * sx)), int(np.ceil((y + bh) * sy)))
            if box[3] - box[1] <= self.max_line_height * self.source_size[1]:
                boxes.append(box)
        return boxes

    def _known_at_gate(self, box: tuple[int, int, int, int], gate_px: float) -> bool:
        """The gate box lies inside a remembered gate box of known text, within the slack."""
        slack = self.gate_slack * gate_px
        return any(box[0] >= r[0] - slack and box[1] >= r[1] - slack and box[2] <= r[2] + slack and box[3] <= r[3] + slack
                   for r in self._gate_text)

    def result(self) -> TextScan:
        if self.source_size is None:
            raise ValueError("TextScanner has scanned no frame")
        return _text_scan(self.scanned, self.flagged, self.boxes, self.texts, self.source_size)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def scan_text(
    batch: FrameBatch, *, every: int, confidence: float, min_chars: int, max_line_height: float,
    gate_width: int | None = None, gate_threshold: float = 0.3,
) -> TextScan:
    """The text scan of one batch of frames (`TextScanner` over a single window)."""
    scanner = TextScanner(every=every, confidence=confidence, min_chars=min_chars,
                          max_line_height=max_line_height, gate_width=gate_width, gate_threshold=gate_threshold)
    scanner.add(batch)
    return scanner.result()


def _text_scan(scanned: int, flagged: int, boxes: list[tuple[int, int, int, int]], texts: list[str],
               source_size: tuple[int, int]) -> TextScan:
    src_w, src_h = source_size
    crop = largest_free_rectangle(src_w, src_h, boxes) if boxes else (0, 0, src_w - src_w % 2, src_h - src_h % 2)
    area = crop[2] * crop[3] / float(src_w * src_h)
    return TextScan(scanned, flagged, boxes, sorted(set(texts)), crop, round(area, 4))


@dataclass(frozen=True)
class TechnicalQuality:
    """Classical technical-quality measures (not a learned quality model)."""

    sharpness: float  # variance of the Laplacian of luma
    brightness: float  # mean luma in [0, 1]
    clipped: float  # share of pixels at 0-4 or 251-255
    noise: float  # Immerkær (1996) noise sigma estimate, 8-bit units
    blockiness: float | None  # 8x8 boundary/interior gradient ratio; None when frames are downscaled


_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def immerkaer_noise(gray: np.ndarray) -> float:
    """Fast noise variance estimation (Immerkær, CVIU 1996): sigma of additive noise."""
    import cv2

    h, w = gray.shape
    conv = cv2.filter2D(gray.astype(np.float32), -1, _IMMERKAER, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(conv).sum() / (6.0 * (w - 2) * (h - 2)))


def blockiness(gray: np.ndarray, block: int = 8) -> float:
    """Mean luma step across 8-pixel block boundaries over the mean step elsewhere;
    about 1 for clean video, higher when compression blocks show."""
    g = gray.astype(np.float32)
    dx = np.abs(np.diff(g, axis=1))
    dy = np.abs(np.diff(g, axis=0))
    # the steps across block boundaries: columns (rows) block-1, 2*block-1, ... of the differences
    bx, by = dx[:, block - 1 :: block], dy[block - 1 :: block, :]
    boundary_sum, boundary_n = float(bx.sum(dtype=np.float64) + by.sum(dtype=np.float64)), bx.size + by.size
    interior_sum = float(dx.sum(dtype=np.float64) + dy.sum(dtype=np.float64)) - boundary_sum
    interior_n = dx.size + dy.size - boundary_n
    boundary = boundary_sum / boundary_n if boundary_n else float("nan")
    interior = interior_sum / interior_n if interior_n else float("nan")
    return float((boundary + 1e-3) / (interior + 1e-3))


def technical_quality(batch: FrameBatch, max_frames: int = 8) -> TechnicalQuality:
    import cv2

    if not len(batch.frames):
        raise ValueError("technical_quality needs at least one frame")
    idx = np.linspace(0, len(batch.frames) - 1, min(max_frames, len(batch.frames))).round().astype(int)
    sharp, bright, clip, noise, block = [], [], [], [], []
    native = batch.scale >= 0.99
    for frame in batch.frames[idx]:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        sharp.append(float(cv2.Laplacian(gray, cv2.CV_32F).var()))
        bright.append(float(gray.mean() / 255.0))
        clip.append(float(((gray <= 4) | (gray >= 251)).mean()))
        noise.append(immerkaer_noise(gray))
        if native:
            block.append(blockiness(gray))
    return TechnicalQuality(
        sharpness=float(np.median(sharp)),
        brightness=float(np.mean(bright)),
        clipped=float(np.mean(clip)),
        noise=float(np.median(noise)),
        blockiness=float(np.median(block)) if native else None,
    )


class FrameSpread:
    """At most `capacity` frames of a stream of batches, spread evenly over it.

    Every frame is kept while they fit; when the buffer overflows, every other kept frame is
    dropped and from then on only every 2nd (4th, ...) arriving frame is taken, so the kept
    frames stay evenly spaced and never exceed `capacity`. A stream that fits is kept whole.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.stride = 1
        self.seen = 0
        self._frames: list[np.ndarray] = []
        self._indices: list[int] = []
        self._times: list[float] = []
        self._template: FrameBatch | None = None

    def add(self, batch: FrameBatch) -> None:
        self._template = self._template or batch
        for frame, index, t in zip(batch.frames, batch.indices, batch.times, strict=True):
            if self.seen % self.stride == 0:
                self._frames.append(frame.copy())  # not a view: the window it came from is released
                self._indices.append(int(index))
                self._times.append(float(t))
                if len(self._frames) > self.capacity:
                    self._frames, self._indices, self._times = self._frames[::2], self._indices[::2], self._times[::2]
                    self.stride *= 2
            self.seen += 1

    def batch(self) -> FrameBatch:
        """The kept frames as one batch."""
        if self._template is None or not self._frames:
            raise ValueError("FrameSpread holds no frame")
        t = self._template
        return FrameBatch(np.stack(self._frames), np.asarray(self._indices, np.int64), t.fps, t.source_size,
                          np.asarray(self._times, np.float64))
