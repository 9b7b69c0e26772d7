"""The pipeline steps under ``torchrun`` (PyTorch's launcher): one process per GPU (or per CPU
slot with gloo), told its place by the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``).

    torchrun --standalone --nproc-per-node 4 --no-python gqr ctr-train --device cuda ...

Without ``WORLD_SIZE`` > 1 every function here is the one-process case (rank 0 of 1, no
communication), so a step runs unchanged without torchrun. Rank 0 (the main process) alone
writes artifacts, checkpoints and reports, shows progress and prints the JobResult; the other
ranks train with it and wait for it at :func:`finish`. A failure on any rank ends that rank with
exit status 1; torchrun then stops the others and exits nonzero itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")

TIMEOUT_ENV = "GQR_DIST_TIMEOUT_S"
"""How long a rank waits in one collective (a barrier, a broadcast) before failing the run:
the other ranks wait while rank 0 alone generates pairs, evaluates or publishes (2 h)."""
DEFAULT_TIMEOUT_S = 7200


def world_size() -> int:
    """Processes in the run (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's place in the run (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True on the process that writes, reports and shows progress."""
    return rank() == 0


def _active() -> bool:
    import torch.distributed as dist

    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def init(device: str) -> None:
    """Join the run's process group (NCCL for ``cuda``, gloo for ``cpu``) and, on CUDA, make
    this process's GPU (``LOCAL_RANK``) the current one, so ``"cuda"`` means it. Nothing
    without torchrun. The trainer library (accelerate) uses this same group."""
    if world_size() <= 1:
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)


def barrier() -> None:
    if _active():
        import torch.distributed as dist

        dist.barrier()


def broadcast(value: T | None) -> T:
    """Rank 0's ``value`` on every rank (any picklable object; the others pass None)."""
    if not _active():
        return value  # type: ignore[return-value]  # rank 0 of 1: its own value
    import torch.distributed as dist

    box: list[Any] = [value if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    result: T = box[0]
    return result


def all_gather(value: T) -> list[T]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not _active():
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def finish() -> None:
    """The end of a successful run: every rank waits for rank 0 (its artifact published, its
    result reported), then leaves the process group."""
    if not _active():
        return
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def joined(device: str, body: Callable[[], T]) -> T:
    """``body()`` as this process's part of the run: the process group joined before
    (:func:`init`), left after a success (:func:`finish`); a failure leaves at once."""
    init(device)
    result = body()
    finish()
    return result
