"""Many processes launched by torchrun: the process group, which rank this is, and the collectives mixpath uses.

Launch any mixpath entry point with ``torchrun --nproc_per_node N ...`` (see docs/distributed.md): torchrun
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``, and ``setup`` reads them.
Without torchrun (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``) every function here is the one-process identity,
so callers need no special case: rank 0 of a world of 1, ``is_main()`` true, collectives return their input.

The backend is chosen from the device: NCCL when this rank computes on CUDA, gloo on the CPU. On CUDA each
rank takes the GPU ``cuda:LOCAL_RANK`` and makes it the current device, so code that says ``"cuda"`` lands
on it too. All communication is torch.distributed's own; nothing here opens a socket.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from mixpath.device import resolve_device
from mixpath.errors import MixPathError

log = logging.getLogger(__name__)

T = TypeVar("T")

BUCKET_ELEMENTS = 1 << 24
"""Gradients are all-reduced in flat buckets of at most this many elements (64 MB of float32)."""


def env_world_size() -> int:
    """The number of processes torchrun launched (1 without torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise MixPathError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a whole number") from None


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def local_rank() -> int:
    """This process's index on its own machine (torchrun's LOCAL_RANK): which GPU it drives."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0: the one process that writes files, logs and progress bars."""
    return rank() == 0


def setup(device: str | torch.device = "auto", timeout_minutes: float = 30.0) -> torch.device:
    """Join the process group torchrun describes (once per process) and return this rank's device.

    ``device``: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``. Under torchrun
    ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK``. The process group is destroyed at interpreter exit.
    ``timeout_minutes`` bounds how long a collective waits for a rank that died or hangs.
    """
    resolved = resolve_device(device)
    if env_world_size() <= 1:
        return resolved
    if resolved.type == "cuda":
        index = local_rank() if resolved.index is None else resolved.index
        if index >= torch.cuda.device_count():
            raise MixPathError(
                f"rank {os.environ.get('RANK', '?')} wants GPU cuda:{index}, but this machine has "
                f"{torch.cuda.device_count()}; launch at most that many processes per machine (--nproc_per_node)"
            )
        resolved = torch.device("cuda", index)
        torch.cuda.set_device(resolved)
    if not is_initialized():
        if not dist.is_available():
            raise MixPathError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes))
        atexit.register(shutdown)
        log.debug("rank %d of %d joined the %s process group on %s", rank(), world_size(), backend, resolved)
    return resolved


def shutdown() -> None:
    """Leave the process group (safe to call when there is none)."""
    if is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here."""
    if world_size() > 1:
        dist.barrier()


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj`` (any picklable value), indexed by rank, on every rank."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (the others' argument is ignored)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def run_on_main(fn: Callable[[], T]) -> T:
    """Call ``fn`` on rank 0 only and return its result on every rank.

    A MixPathError raised by ``fn`` is raised on every rank with the same message, so a user error in,
    say, reading the run folder ends all ranks with one line instead of leaving the others waiting.
    """
    if world_size() == 1:
        return fn()
    outcome: tuple[bool, Any] = (True, None)
    if is_main():
        try:
            outcome = (True, fn())
        except MixPathError as err:
            outcome = (False, str(err))
    ok, value = broadcast_object(outcome)
    if not ok:
        raise MixPathError(value)
    return value


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks, in place; returned for chaining."""
    if world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_gradients(parameters: Iterable[torch.nn.Parameter], bucket_elements: int = BUCKET_ELEMENTS) -> None:
    """Replace each ``.grad`` by its mean over ranks; parameters without a gradient are skipped.

    Every rank must hold gradients for the same parameters in the same order, which is true when all
    ranks trained the same subnet(s) this step. Gradients go in flat buckets (one all-reduce each) so a
    supernet with hundreds of small tensors costs a few collectives, not hundreds.
    """
    world = world_size()
    if world == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    for bucket in _buckets(grads, bucket_elements):
        flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(world)
        offset = 0
        for grad in bucket:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()


def broadcast_tensors(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``src``'s values (weights at the start, as DDP does;
    BN running statistics before a checkpoint, as DDP's ``broadcast_buffers`` does)."""
    if world_size() == 1:
        return
    for tensor in tensors:
        dist.broadcast(tensor, src=src)


def _buckets(tensors: Sequence[torch.Tensor], bucket_elements: int) -> list[list[torch.Tensor]]:
    """Consecutive runs of tensors with one dtype and device, each run at most ``bucket_elements`` long
    (a single larger tensor gets a bucket of its own)."""
    buckets: list[list[torch.Tensor]] = []
    size = 0
    for tensor in tensors:
        last = buckets[-1][-1] if buckets else None
        if (
            last is None
            or last.dtype != tensor.dtype
            or last.device != tensor.device
            or size + tensor.numel() > bucket_elements
        ):
            buckets.append([])
            size = 0
        buckets[-1].append(tensor)
        size += tensor.numel()
    return buckets
