"""Procedural scene rendering: textured backgrounds, subjects with identities that move
through timelines of sub-actions, subtitles, flashes and camera pans.

Everything is drawn with numpy/OpenCV from a seed, so a shard regenerates bit-for-bit
and its ground truth (cuts, boxes, timelines, text) is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Sub-actions a subject performs; velocities in frame-widths per second.
ACTIONS: dict[str, dict[str, float]] = {
    "walks to the left": {"vx": -0.12, "vy": 0.0, "scale": 0.0, "bob": 0.0},
    "walks to the right": {"vx": 0.12, "vy": 0.0, "scale": 0.0, "bob": 0.0},
    "jumps up and down": {"vx": 0.0, "vy": 0.0, "scale": 0.0, "bob": 0.10},
    "walks toward the camera": {"vx": 0.0, "vy": 0.02, "scale": 0.22, "bob": 0.0},
    "steps back from the camera": {"vx": 0.0, "vy": -0.02, "scale": -0.18, "bob": 0.0},
    "runs to the right": {"vx": 0.22, "vy": 0.0, "scale": 0.0, "bob": 0.03},
}

SHIRT_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "blue": (40, 70, 200),
    "green": (40, 160, 60),
    "yellow": (220, 200, 40),
    "purple": (130, 50, 160),
    "orange": (230, 120, 30),
    "white": (235, 235, 235),
    "black": (30, 30, 30),
}
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "dark": (40, 30, 25),
    "blond": (220, 190, 110),
    "grey": (150, 150, 150),
    "red": (160, 60, 30),
}
SKIN_TONES = [(240, 200, 170), (200, 150, 110), (150, 100, 70), (100, 65, 45)]
PLACES = ["a park", "a city street", "a beach", "a kitchen", "an office", "a garden"]
SUBTITLES = [
    "I told you we would be late",
    "Where did you put the keys",
    "This is the best day ever",
    "Look at the sky tonight",
]


@dataclass(frozen=True)
class Identity:
    """A person's look; the same identity looks the same in every clip it appears in."""

    identity_id: str
    label: str  # "man" | "woman"
    shirt: str
    hair: str
    skin: int

    def description(self) -> str:
        article = "an" if self.shirt[0] in "aeiou" else "a"
        return f"a {self.label} with {self.hair} hair in {article} {self.shirt} shirt"


@dataclass(frozen=True)
class SubAction:
    start_s: float
    end_s: float
    description: str


def textured_background(rng: np.random.Generator, width: int, height: int, pad: int) -> np.ndarray:
    """A scene background larger than the frame by `pad` px on each side (for pans)."""
    h, w = height + 2 * pad, width + 2 * pad
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 200, size=3).astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        layer = np.full((h, w), base[c], np.float32)
        for _ in range(4):
            fx, fy = rng.uniform(0.005, 0.05, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            layer += rng.uniform(8, 30) * np.sin(fx * xx + fy * yy + phase)
        img[..., c] = layer
    # Horizon-like gradient and a few static props give the flow something to track.
    img += np.linspace(-25, 25, h, dtype=np.float32)[:, None, None]
    import cv2

    for _ in range(int(rng.integers(4, 9))):
        colour = tuple(float(v) for v in rng.uniform(20, 235, size=3))
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(10, 60)), y0 + int(rng.integers(10, 60))), colour, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def person_pose(
    actions: list[SubAction], t: float, width: int, height: int, x0: float, base_scale: float
) -> tuple[float, float, float]:
    """Centre (x, y) and scale of a person at time t, integrating its sub-actions."""
    x, y, scale = x0 * width, height * 0.62, base_scale
    bob = 0.0
    for act in actions:
        if t <= act.start_s:
            break
        dt = min(t, act.end_s) - act.start_s
        spec = ACTIONS[act.description]
        x += spec["vx"] * width * dt
        y += spec["vy"] * height * dt
        scale *= 1.0 + spec["scale"] * dt
        if act.start_s <= t < act.end_s and spec["bob"]:
            bob = spec["bob"] * height * abs(np.sin(2 * np.pi * 1.5 * (t - act.start_s)))
    return x, y - bob, scale


def draw_person(
    frame: np.ndarray, mask: np.ndarray, ident: Identity, cx: float, cy: float, scale: float
) -> tuple[int, int, int, int]:
    """Draw a person (body, head, hair) centred at (cx, cy); fill `mask`; return its box."""
    import cv2

    h = frame.shape[0]
    body_h = h * 0.22 * scale
    body_w = body_h * 0.45
    head_r = body_h * 0.22
    c = (int(round(cx)), int(round(cy)))
    shirt = SHIRT_COLOURS[ident.shirt]
    skin = SKIN_TONES[ident.skin]
    hair = HAIR_COLOURS[ident.hair]
    legs_top = int(cy + body_h * 0.45)
    parts = [
        ("ellipse", c, (int(body_w / 2), int(body_h / 2)), shirt),
        ("legs", (int(cx - body_w * 0.3), legs_top, int(cx + body_w * 0.3), int(legs_top + body_h * 0.45)), None, (50, 50, 90)),
        ("circle", (c[0], int(cy - body_h / 2 - head_r * 0.9)), int(head_r), skin),
        ("hair", (c[0], int(cy - body_h / 2 - head_r * 1.3)), (int(head_r), int(head_r * 0.55)), hair),
    ]
    for kind, a, b, colour in parts:
        for target, value in ((frame, colour), (mask, 255)):
            v = value if target is frame else 255
            if kind == "ellipse":
                cv2.ellipse(target, a, b, 0, 0, 360, v, -1, cv2.LINE_AA if target is frame else cv2.LINE_8)
            elif kind == "legs":
                cv2.rectangle(target, a[:2], a[2:], v, -1)
            elif kind == "circle":
                cv2.circle(target, a, b, v, -1, cv2.LINE_AA if target is frame else cv2.LINE_8)
            else:
                cv2.ellipse(target, a, b, 0, 180, 360, v, -1, cv2.LINE_AA if target is frame else cv2.LINE_8)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return (0, 0, 0, 0)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def draw_subtitle(frame: np.ndarray, text: str) -> tuple[int, int, int, int]:
    """Burn a subtitle into the bottom of the frame; return its box (x0, y0, x1, y1)."""
    import cv2

    h, w = frame.shape[:2]
    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, w / 560, max(1, w // 320)
    (tw, th), base = cv2.getTextSize(text, font, size, thick)
    while tw > w * 0.92 and size > 0.2:
        size *= 0.9
        (tw, th), base = cv2.getTextSize(text, font, size, thick)
    x, y = (w - tw) // 2, h - int(h * 0.06)
    cv2.rectangle(frame, (x - 6, y - th - 6), (x + tw + 6, y + base + 4), (0, 0, 0), -1)
    cv2.putText(frame, text, (x, y), font, size, (255, 255, 255), thick, cv2.LINE_AA)
    return x - 6, y - th - 6, x + tw + 6, y + base + 4
