"""PNG bytes of images and of matplotlib figures: the one home of the helpers every
package's previews, reference crops, plots and reports share.

OpenCV and matplotlib are imported inside the functions, so importing this module costs
nothing (the Dagster code location imports packages that import it).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image (H, W, 3).

    Raises:
        ValueError: OpenCV could not encode it.
    """
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as PNG")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """The RGB uint8 image (H, W, 3) of PNG (or any OpenCV-readable) bytes.

    Raises:
        ValueError: the bytes are not a decodable image.
    """
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable image")
    return np.ascontiguousarray(image[..., ::-1])


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any, **savefig: Any) -> bytes:
    """PNG bytes of a matplotlib figure, which is closed afterwards.

    Args:
        **savefig: `Figure.savefig` options (dpi, bbox_inches).
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig)
    plt.close(fig)
    return buf.getvalue()
