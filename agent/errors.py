"""Errors carry the stage they come from and whether trying again can help."""

from __future__ import annotations


class StageError(RuntimeError):
    stage = "agent"

    def __init__(self, message: str, *, retryable: bool = False, timed_out: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.timed_out = timed_out
        """The engine gave nothing within its time limit (hung or too slow), rather than raising."""
