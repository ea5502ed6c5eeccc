"""A fault for the DDP tests (test_ddp.py, test_resume_faults.py): a process lost in the middle of a run."""

from __future__ import annotations

import os

from torch import nn

from labkit import distributed


class CrashOnRank1(nn.Module):
    """The loss ``base`` that ends rank 1's process (``os._exit(3)``) at its ``at``-th call (None: never)."""

    def __init__(self, base: nn.Module, at: int | None) -> None:
        super().__init__()
        self.base, self.at, self.calls = base, at, 0

    def forward(self, a, b):
        self.calls += 1
        if self.at is not None and distributed.rank() == 1 and self.calls == self.at:
            os._exit(3)
        return self.base(a, b)
