"""Small helpers for data-parallel training with ``torchrun`` and ``torch.distributed``.

PyTorch's own engine does the work (``torchrun`` starts the processes and sets ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``; ``torch.distributed`` runs the
collectives; :class:`torch.nn.parallel.DistributedDataParallel` averages gradients). These
helpers only answer "am I distributed, which rank am I" and wrap the few collectives that
:func:`labkit.train.fit` and :func:`labkit.train.fit_gan` need. Every helper is a no-op (or returns
its input) in a single process, so the same code runs with and without ``torchrun``.

Backend: NCCL when the run trains on CUDA, gloo otherwise (``-p device=cpu`` on a GPU machine too); the
collectives wait up to :data:`DEFAULT_TIMEOUT_MIN` minutes. Source: PyTorch "Writing distributed applications" and
``torchrun`` documentation (env:// initialisation).
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DEFAULT_TIMEOUT_MIN", "backend_for", "all_reduce_mean", "all_reduce_sum", "average_gradients", "barrier",
           "broadcast_buffers",
           "broadcast_object", "device_for_rank", "gather_objects", "init_from_env", "is_distributed",
           "is_main", "local_rank", "rank", "world_size"]


def is_distributed() -> bool:
    """True when a process group is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 in a single process)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 in a single process)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_rank() -> int:
    """The rank on this node (``$LOCAL_RANK`` set by torchrun; 0 otherwise): the GPU index to use."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on rank 0 (the process that validates, logs and writes checkpoints)."""
    return rank() == 0


#: minutes a collective may wait (``LABKIT_DDP_TIMEOUT_MIN`` overrides): NCCL's 10-minute default can trip while
#: rank 0 alone validates a large full-profile set and the other ranks wait at the next barrier
DEFAULT_TIMEOUT_MIN = 60


def backend_for(device: str | torch.device | None = None) -> str:
    """``'nccl'`` when the run trains on CUDA (``device`` ``None``/``"auto"`` with CUDA present, or a CUDA device),
    else ``'gloo'`` (e.g. ``-p device=cpu`` on a GPU machine)."""
    if device is None or device == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_from_env(backend: str | None = None, device: str | torch.device | None = None,
                  timeout_min: float | None = None) -> bool:
    """Join the process group described by torchrun's environment variables, if there is one.

    Does nothing (returns False) when ``WORLD_SIZE`` is unset or 1; returns True when a group with
    several processes is (now) initialised. Already initialised: returns :func:`is_distributed`.

    Args:
        backend: ``'nccl'`` / ``'gloo'``; None: :func:`backend_for` ``device``.
            With NCCL the process's device is set to ``cuda:$LOCAL_RANK``.
        device: the run's device argument (``"auto"``, ``"cpu"``, ``"cuda"``...), for the backend.
        timeout_min: the collectives' timeout in minutes (default ``$LABKIT_DDP_TIMEOUT_MIN`` or
            :data:`DEFAULT_TIMEOUT_MIN`).

    Raises:
        ValueError: ``WORLD_SIZE`` > 1 but ``RANK`` or ``MASTER_ADDR`` / ``MASTER_PORT`` missing
            (the message names the variable; start the script with ``torchrun``).
    """
    if dist.is_available() and dist.is_initialized():
        return is_distributed()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but ${name} is not set; "
                             "start distributed runs with torchrun")
    if backend is None:
        backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    minutes = float(timeout_min or os.environ.get("LABKIT_DDP_TIMEOUT_MIN") or DEFAULT_TIMEOUT_MIN)
    dist.init_process_group(backend=backend, init_method="env://", timeout=datetime.timedelta(minutes=minutes))
    return is_distributed()


def device_for_rank(device: torch.device) -> torch.device:
    """``cuda`` -> ``cuda:$LOCAL_RANK`` when distributed (one GPU per process); others unchanged."""
    if is_distributed() and device.type == "cuda":
        return torch.device("cuda", local_rank())
    return device


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s picklable ``obj`` on every rank (e.g. rank 0's early-stopping decision)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in a single process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over the ranks (in place; returned). Identity in a single process."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_mean(value: float | torch.Tensor) -> float | torch.Tensor:
    """Mean of a float or tensor over the ranks (a float comes back as a float)."""
    if not is_distributed():
        return value
    t = value.detach().clone() if isinstance(value, torch.Tensor) else torch.tensor(float(value), dtype=torch.float64)
    if dist.get_backend() == "nccl" and t.device.type != "cuda":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= world_size()
    return t if isinstance(value, torch.Tensor) else float(t)


def average_gradients(module: nn.Module) -> None:
    """Average the ``.grad`` of ``module``'s parameters over the ranks (one flat all-reduce).

    What DDP does during backward, for networks that cannot be wrapped in DDP (a discriminator
    that is run several times per update, frozen for the generator's update, and differentiated
    twice for the gradient penalty). Parameters without a gradient are skipped on every rank alike.
    """
    if not is_distributed():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (e.g. BatchNorm running statistics) to every rank."""
    if not is_distributed():
        return
    for b in module.buffers():
        dist.broadcast(b, src=src)
