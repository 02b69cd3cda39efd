"""What one command line of the virtual shell may use.

The commands are model-written and run inside the grading process, so every command line runs under a
:class:`Budget`: a time budget, checked in every loop (and handed to the regex engine as its timeout), and
an output budget, charged as text is produced (before a join or a copy creates it), so no line of input
can make the grader allocate more than the budget. Glob expansion is capped like Linux's ``ARG_MAX``.
A command line that runs out of budget stops there and its result carries ``limit``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

TIME_BUDGET_S = 2.0  # wall clock per command line


# characters a command line may produce, all its commands and pipe stages together
OUTPUT_BUDGET = 16 * 1024 * 1024


ARG_MAX = 2 * 1024 * 1024  # characters of one command's arguments after glob expansion (Linux's ARG_MAX)


class CommandLimit(Exception):
    """The command line ran out of its budget; the rest of it does not run."""


@dataclass
class Budget:
    """What one command line may still use: a wall-clock deadline and a number of characters of output."""

    deadline: float
    chars_left: int

    @classmethod
    def start(cls, seconds: float, chars: int) -> Budget:
        return cls(time.monotonic() + seconds, chars)

    def charge(self, size: int) -> None:
        """Account ``size`` characters of output before they are built; over budget stops the line."""
        self.check_time()
        self.chars_left -= size
        if self.chars_left < 0:
            raise CommandLimit("output exceeds the budget of one command line")

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise CommandLimit("the command line exceeded its time budget")
