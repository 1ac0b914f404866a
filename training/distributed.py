"""Process-group setup for DeepSpeed: gloo on CPU, NCCL on GPUs.

Launchers (``torchrun``, the ``deepspeed`` launcher) set ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. A plain ``python`` process (a
Dagster run worker, a test) has none of them, and DeepSpeed then looks for MPI; the
defaults below make such a process a world of one instead.

DeepSpeed JIT-compiles its CPU communication op on first use (about a minute); the
compile cache defaults to ``<repo>/.cache/torch_extensions`` so that it is paid once per
checkout rather than once per temporary home directory.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EXTENSIONS_DIR = REPO_ROOT / ".cache" / "torch_extensions"


@dataclass(frozen=True)
class DistributedInfo:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_single_process_defaults() -> None:
    """Fill in a world of one where no launcher set the rendezvous variables."""
    if "WORLD_SIZE" in os.environ and "RANK" not in os.environ:
        raise RuntimeError(
            "WORLD_SIZE is set but RANK is not: start the job with torchrun or deepspeed"
        )
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))


def set_extensions_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Point torch's JIT extension cache at ``path`` unless TORCH_EXTENSIONS_DIR is set.

    Also puts this interpreter's ``bin`` folder first on PATH when it holds ``ninja`` (the
    ``ninja`` wheel DeepSpeed depends on). Torch builds with whichever ``ninja`` PATH finds
    first, and ninja versions hash commands differently in their build logs (1.13 vs
    1.11): a launcher that activates the environment and a bare ``.venv/bin/python`` would
    otherwise each find the other's build stale and recompile (minutes on a CPU).
    """
    target = Path(os.environ.setdefault("TORCH_EXTENSIONS_DIR",
                                        str(path or DEFAULT_EXTENSIONS_DIR)))
    target.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    paths = os.environ.get("PATH", "").split(os.pathsep)
    if (bin_dir / "ninja").is_file() and (not paths or paths[0] != str(bin_dir)):
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), *paths])
    return target


def default_backend() -> str:
    """``nccl`` when CUDA is available, else ``gloo``."""
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def training_device() -> str:
    """The device this process trains and encodes on: ``cuda:<LOCAL_RANK>`` when CUDA is
    available (the GPU a launcher gave this rank; 0 outside a launcher), else ``cpu``."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"


def init_distributed(backend: str | None = None) -> DistributedInfo:
    """Initialise the process group once (idempotent) and describe this process.

    Args:
        backend: ``gloo`` | ``nccl``; default from the hardware.
    """
    set_single_process_defaults()
    set_extensions_dir()
    import deepspeed
    import torch.distributed as dist

    backend = backend or default_backend()
    if not dist.is_initialized():
        deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
    return DistributedInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ["LOCAL_RANK"]),
        backend=dist.get_backend(),
    )


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def is_main_process() -> bool:
    import torch.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0
