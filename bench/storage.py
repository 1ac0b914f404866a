"""Benchmark of the object stores: the S3 backend against the local directory in the same run.

Starts a real S3-protocol server on 127.0.0.1 (moto, a dev dependency) and measures, for the
same bytes on both backends:

- upload and download throughput of a large file (multipart on S3) -> MB/s and the S3/local ratio;
- decoding the first frames of a long H.264 clip: ranged reads (`open_stream`) against a
  whole-file copy first (`local_path`), with the bytes each fetched from the server.

Loopback has no network latency or bandwidth limit, so the ratios measure the client's own
overhead (signing, HTTP, copies); on a real MinIO/S3 the per-request latency adds to them.

Prints one JSON object. Usage: python bench/storage.py [--mb 64] [--clip-s 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import best_of  # noqa: E402  (bench/ is on sys.path)

from core.storage import LocalObjectStore  # noqa: E402
from core.storage_s3 import S3ObjectStore  # noqa: E402
from curation.video_io import iter_frames  # noqa: E402

ACCESS, SECRET = "bench-access-key", "bench-secret-key"


def _long_clip(path: Path, seconds: float, fps: int = 24, size: tuple[int, int] = (640, 360)) -> int:
    """A textured clip whose content moves (so H.264 cannot shrink it to nothing); its frame count."""
    import numpy as np

    from core.video import ClipWriter

    rng = np.random.default_rng(0)
    w, h = size
    texture = rng.integers(0, 255, (h, w * 2, 3), dtype=np.uint8)
    writer = ClipWriter(path, Fraction(fps), w, h, crf=23, preset="veryfast")
    n = int(seconds * fps)
    for i in range(n):
        writer.write(np.ascontiguousarray(texture[:, i % w: i % w + w]))
    writer.close()
    return n


class _CountingClient:
    """Wraps the minio client's get_object to count requests and bytes served."""

    def __init__(self, store: S3ObjectStore) -> None:
        self.store, self.requests, self.bytes = store, 0, 0
        self._get = store._client.get_object

    def __enter__(self) -> _CountingClient:
        def get_object(*args, **kwargs):
            response = self._get(*args, **kwargs)
            self.requests += 1
            self.bytes += int(response.headers.get("Content-Length", 0))
            return response

        self.store._client.get_object = get_object
        return self

    def __exit__(self, *exc) -> None:
        self.store._client.get_object = self._get


def _first_frames(source, frames: int) -> int:
    n = 0
    for _ in iter_frames(source, width=160):
        n += 1
        if n >= frames:
            break
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=64, help="size of the large file")
    ap.add_argument("--part-mb", type=int, default=8, help="multipart part size on S3")
    ap.add_argument("--clip-s", type=float, default=60.0, help="length of the long clip")
    ap.add_argument("--frames", type=int, default=24, help="frames decoded from the clip's start")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import logging

    from minio import Minio
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"{host}:{port}"
        Minio(endpoint, access_key=ACCESS, secret_key=SECRET, secure=False, region="us-east-1").make_bucket("bench")
        s3 = S3ObjectStore(endpoint, "bench", "reactid", secure=False, region="us-east-1",
                           part_size_mb=args.part_mb, credentials=(ACCESS, SECRET, None))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            local = LocalObjectStore(tmp / "store")
            blob = tmp / "blob.bin"
            blob.write_bytes(os.urandom(args.mb * 1024 * 1024))
            clip = tmp / "clip.mp4"
            clip_frames = _long_clip(clip, args.clip_s)
            clip_bytes = clip.stat().st_size

            transfer = {}
            for name, store in (("local", local), ("s3", s3)):
                put = best_of(lambda: store.put_file("bench/blob.bin", blob), args.repeat)[0]
                get = best_of(lambda: store.get_bytes("bench/blob.bin"), args.repeat)[0]
                transfer[name] = {"put_mb_s": round(args.mb / put, 1), "get_mb_s": round(args.mb / get, 1),
                                  "put_s": round(put, 4), "get_s": round(get, 4)}

            s3.put_file("bench/clip.mp4", clip)
            local.put_file("bench/clip.mp4", clip)

            def streamed() -> None:
                with s3.open_stream("bench/clip.mp4") as stream:
                    _first_frames(stream, args.frames)

            def copied() -> None:
                with s3.local_path("bench/clip.mp4") as path:
                    _first_frames(path, args.frames)

            def on_disk() -> None:
                with local.local_path("bench/clip.mp4") as path:
                    _first_frames(path, args.frames)

            with _CountingClient(s3) as counted:
                streamed()
            stream_fetch = {"requests": counted.requests, "bytes": counted.bytes}
            with _CountingClient(s3) as counted:
                copied()
            copy_fetch = {"requests": counted.requests, "bytes": counted.bytes}
            decode = {
                "local_disk_s": round(best_of(on_disk, args.repeat)[0], 4),
                "s3_open_stream_s": round(best_of(streamed, args.repeat)[0], 4),
                "s3_local_path_copy_s": round(best_of(copied, args.repeat)[0], 4),
            }
    finally:
        server.stop()

    print(json.dumps({
        "benchmark": "storage",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "server": "moto ThreadedMotoServer on 127.0.0.1 (no network latency)",
        "large_file": {"mb": args.mb, "s3_part_mb": args.part_mb, **transfer,
                       "ratio_s3_to_local_put_time": round(transfer["s3"]["put_s"] / transfer["local"]["put_s"], 2),
                       "ratio_s3_to_local_get_time": round(transfer["s3"]["get_s"] / transfer["local"]["get_s"], 2)},
        "clip_start_decode": {
            "clip_bytes": clip_bytes, "clip_frames": clip_frames,
            "frames_decoded": args.frames, **decode,
            "fetched_open_stream": stream_fetch, "fetched_local_path": copy_fetch,
            "ratio_stream_to_copy_time": round(decode["s3_open_stream_s"] / decode["s3_local_path_copy_s"], 3),
            "ratio_stream_to_copy_bytes": round(stream_fetch["bytes"] / max(1, copy_fetch["bytes"]), 3),
        },
    }, indent=1))


if __name__ == "__main__":
    main()
