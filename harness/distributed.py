"""Data-parallel context from torchrun / accelerate launch environment variables.

Each rank generates its own shard of every task (example index modulo world size) into its own
prediction file; after a barrier, rank 0 merges the shards and scores once. Without the launcher's
variables this is a single process and costs nothing.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: str | None          # the rank's device, when the launcher decides it
    barrier: Callable[[], None]
    close: Callable[[], None]


def init() -> Context:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Context(0, 1, None, lambda: None, lambda: None)
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    # Ranks wait at the barrier while others finish their shard: allow a long generation.
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(hours=24))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = f"cuda:{local_rank}" if cuda else "cpu"
    return Context(dist.get_rank(), dist.get_world_size(), device, dist.barrier,
                   dist.destroy_process_group)
