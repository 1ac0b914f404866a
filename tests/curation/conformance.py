"""A decoding conformance corpus: small videos that real footage is made of, each with the
outcome the curation stages must give it.

Every frame shows its presentation ordinal as a Gray-coded barcode in a band at the bottom of
the upright picture (and a white marker at its top-left corner), so a decoded frame says
which source frame it is and whether it is upright. Shots are flat colour gradients, so
hard cuts sit at known frames.

Cases: out-of-order timestamps (an intra-only H.264 stream muxed with pairs of frames
swapped: the decoder hands frames over with pts 0, 1, 2, 4, 3, ..., as packed B-frames in
DivX/Xvid AVIs do; PyAV's mpeg4 encoder cannot write packed B-frames themselves), variable
frame rate (25 fps then 12.5 fps by explicit pts), rotation (a display matrix turning a
landscape-coded stream into a portrait picture, as phones write), 10-bit H.264, HEVC, VP9,
AV1 (when PyAV has an AV1 encoder), audio before video (stream 0 is audio), an odd size
(321x241), files cut short (a decodable part long enough to use, one too short, one whose
index is lost) and a long video with several cuts (to exercise the windows).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

BITS = 10  # ordinals up to 1023
SHOT_COLOURS = ((40, 60, 170), (220, 120, 30), (30, 160, 70), (170, 40, 140))


@dataclass(frozen=True)
class Case:
    """One file of the corpus and what the stages must make of it.

    Attributes:
        times_s: presentation time of every frame encoded, in presentation order.
        cuts: ordinals where a new shot starts.
        display_size: (width, height) of the upright picture.
        expect: "ok", "partial" (ends early, used as far as it goes), or a quarantine reason.
        declares_frames: the container declares a frame count (MP4) rather than none (Matroska).
        frames_present: frames in the file after a cut (None: all of them).
    """

    name: str
    file: str
    times_s: tuple[float, ...]
    cuts: tuple[int, ...] = ()
    display_size: tuple[int, int] = (160, 120)
    expect: str = "ok"
    declares_frames: bool = True
    frames_present: int | None = None
    notes: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return len(self.times_s)


def gray(k: int) -> int:
    return k ^ (k >> 1)


def render(ordinal: int, shot: int, width: int, height: int) -> np.ndarray:
    """The upright picture of one frame: shot colour gradient, top-left marker, barcode band."""
    base = np.asarray(SHOT_COLOURS[shot % len(SHOT_COLOURS)], np.float32)
    ramp = np.linspace(0.7, 1.0, width, dtype=np.float32)[None, :, None]
    image = np.broadcast_to(base * ramp, (height, width, 3)).astype(np.uint8).copy()
    side = max(8, height // 6)
    image[:side, :side] = 255
    band = max(8, height // 6)
    code = gray(ordinal)
    stripe = width // BITS
    image[height - band :] = 0
    for bit in range(BITS):
        if code >> (BITS - 1 - bit) & 1:
            image[height - band :, bit * stripe : (bit + 1) * stripe] = 255
    return image


def read_ordinal(image: np.ndarray) -> int:
    """The ordinal a decoded upright frame shows."""
    height, width = image.shape[:2]
    band = max(8, height // 6)
    stripe = width // BITS
    rows = image[height - band + 2 : height - 2].mean(axis=2)
    code = 0
    for bit in range(BITS):
        cols = rows[:, bit * stripe + stripe // 4 : (bit + 1) * stripe - stripe // 4]
        code = code << 1 | int(cols.mean() > 128)
    ordinal, shift = code, code >> 1
    while shift:
        ordinal ^= shift
        shift >>= 1
    return ordinal


def is_upright(image: np.ndarray) -> bool:
    """The white marker is at the top-left corner and the barcode band at the bottom."""
    height = image.shape[0]
    side = max(8, height // 6)
    return bool(image[2 : side - 2, 2 : side - 2].mean() > 200 and image[: side // 2, -side // 2 :].mean() < 200)


def _shot(ordinal: int, cuts: tuple[int, ...]) -> int:
    return sum(ordinal >= c for c in cuts)


def _frames(case: Case, coded_turns: int = 0):
    """The frames of a case as coded: upright pictures turned by `coded_turns` quarter turns."""
    w, h = case.display_size
    for k in range(case.frames):
        yield np.ascontiguousarray(np.rot90(render(k, _shot(k, case.cuts), w, h), coded_turns))


def _encode(path: Path, case: Case, *, fmt: str, codec: str = "libx264", pix_fmt: str = "yuv420p",
            time_base: Fraction = Fraction(1, 1000), options: dict | None = None, container_options: dict | None = None,
            rotation: int = 0, audio_first: bool = False) -> None:
    import av

    w, h = case.display_size
    coded_turns = -rotation // 90  # the display matrix turns the coded picture by `rotation` degrees
    if coded_turns % 2:
        w, h = h, w
    out = av.open(str(path), "w", format=fmt, options=container_options or {})
    audio = out.add_stream("aac", rate=16000) if audio_first else None
    if audio is not None:
        audio.layout = "mono"
    nominal = Fraction(round(1 / (case.times_s[1] - case.times_s[0])))
    stream = out.add_stream(codec, rate=nominal)
    stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
    stream.codec_context.time_base = time_base
    stream.options = {"preset": "veryfast", "crf": "18", **(options or {})} if codec == "libx264" else (options or {})
    if rotation:
        stream.set_display_rotation(rotation)
    for t, image in zip(case.times_s, _frames(case, coded_turns), strict=True):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = int(round(t / time_base)), time_base
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    if audio is not None:
        rate = 16000
        for start in range(0, int(rate * (case.times_s[-1] + 0.1)), 1024):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = rate, start
            for packet in audio.encode(samples):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    out.close()


def _encode_out_of_order(path: Path, case: Case) -> None:
    """Intra-only H.264 in Matroska with pairs of frames stored swapped: each packet keeps its
    own pts, so the decoder (no reordering delay for intra frames) hands frames over in
    storage order with their pts out of order."""
    import av

    w, h = case.display_size
    rate = Fraction(round(1 / (case.times_s[1] - case.times_s[0])))
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = w, h, "yuv420p"
    encoder.time_base, encoder.framerate = 1 / rate, rate
    encoder.options = {"x264-params": "keyint=1:scenecut=0", "preset": "veryfast", "crf": "18"}
    packets = []
    for k, image in enumerate(_frames(case)):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = k
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    order = list(case.notes["storage_order"])
    out = av.open(str(path), "w", format="matroska")
    stream = out.add_stream("h264", rate=rate)
    stream.width, stream.height = w, h
    stream.time_base = 1 / rate
    stream.codec_context.extradata = encoder.extradata
    for slot, source in enumerate(order):
        packet = packets[source]
        packet.stream = stream
        packet.time_base = 1 / rate
        packet.pts, packet.dts = source, slot - 1  # dts one frame behind, as a stream with reordering has
        out.mux(packet)
    out.close()


def _cut_at_packet(src: Path, dest: Path, keep: int) -> None:
    """Copy `src` up to the byte where its video packet number `keep` starts."""
    import av

    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        positions = [p.pos for p in container.demux(stream) if p.size]
    dest.write_bytes(src.read_bytes()[: positions[keep]])


def _cfr(n: int, fps: float) -> tuple[float, ...]:
    return tuple(k / fps for k in range(n))


def av1_encoder() -> str | None:
    import av

    return next((c for c in ("libsvtav1", "libaom-av1", "librav1e") if c in av.codecs_available), None)


def build_corpus(folder: Path) -> dict[str, Case]:
    """Write every case into `folder`; returns them by name."""
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its configuration otherwise
    swapped = list(range(60))
    for i in range(3, 58, 3):
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    cases = [
        Case("out_of_order", "out_of_order.mkv", _cfr(60, 20), (31,), declares_frames=False,
             notes={"storage_order": swapped}),
        Case("vfr", "vfr.mkv", tuple([k * 0.04 for k in range(40)] + [1.6 + k * 0.08 for k in range(30)]),
             declares_frames=False),
        Case("rotated", "rotated.mp4", _cfr(60, 20), (30,), display_size=(128, 192)),
        Case("ten_bit", "ten_bit.mp4", _cfr(60, 20), (30,)),
        Case("hevc", "hevc.mp4", _cfr(60, 20), (30,)),
        Case("vp9", "vp9.webm", _cfr(60, 20), (30,), declares_frames=False),
        Case("audio_first", "audio_first.mp4", _cfr(60, 20), (30,)),
        Case("odd_size", "odd_size.mkv", _cfr(60, 20), (30,), display_size=(321, 241), declares_frames=False),
        Case("truncated_mp4", "truncated_mp4.mp4", _cfr(120, 20), expect="partial", frames_present=70),
        Case("truncated_mkv", "truncated_mkv.mkv", _cfr(120, 20), expect="partial", declares_frames=False,
             frames_present=70),
        Case("truncated_short", "truncated_short.mp4", _cfr(120, 20), expect="truncated_short", frames_present=10),
        Case("truncated_unreadable", "truncated_unreadable.mp4", _cfr(120, 20), expect="truncated"),
        Case("long", "long.mp4", _cfr(240, 20), (70, 150, 200)),
    ]
    if av1_encoder():
        cases.append(Case("av1", "av1.mp4", _cfr(60, 20), (30,)))
    no_b = {"x264-params": "bframes=0"}
    for case in cases:
        path = folder / case.file
        if case.name == "out_of_order":
            _encode_out_of_order(path, case)
        elif case.name == "rotated":
            _encode(path, case, fmt="mp4", rotation=-90)  # the picture turns 90 degrees clockwise on display
        elif case.name == "ten_bit":
            _encode(path, case, fmt="mp4", pix_fmt="yuv420p10le")
        elif case.name == "hevc":
            _encode(path, case, fmt="mp4", codec="libx265", options={"x265-params": "log-level=error"})
        elif case.name == "vp9":
            _encode(path, case, fmt="webm", codec="libvpx-vp9", options={"deadline": "realtime", "cpu-used": "8"})
        elif case.name == "av1":
            _encode(path, case, fmt="mp4", codec=av1_encoder(), options={"preset": "10", "crf": "20"})
        elif case.name == "audio_first":
            _encode(path, case, fmt="mp4", audio_first=True)
        elif case.name == "odd_size":
            _encode(path, case, fmt="matroska", pix_fmt="yuv444p")
        elif case.name in ("truncated_mp4", "truncated_short"):
            whole = folder / f".{case.name}.whole.mp4"
            _encode(whole, case, fmt="mp4", options=no_b, container_options={"movflags": "faststart"})
            _cut_at_packet(whole, path, case.frames_present)
            whole.unlink()
        elif case.name == "truncated_mkv":
            whole = folder / f".{case.name}.whole.mkv"
            _encode(whole, case, fmt="matroska", options=no_b)
            _cut_at_packet(whole, path, case.frames_present)
            whole.unlink()
        elif case.name == "truncated_unreadable":  # the index (moov) is written last: cut, nothing can be found
            whole = folder / f".{case.name}.whole.mp4"
            _encode(whole, case, fmt="mp4")
            path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
            whole.unlink()
        elif case.name == "vfr":
            _encode(path, case, fmt="matroska")
        else:
            _encode(path, case, fmt="mp4")
    return {c.name: c for c in cases}
