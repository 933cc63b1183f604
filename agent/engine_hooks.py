"""The one seam the engine adapters call at each use of their engine ("asr", "tts", "llm"), in the
engine's own thread. The product installs nothing here; the tests' fault injection
(agent/devtools/faults.py, on `STANDARDISTE_FAULTS`) installs itself. A bottom leaf."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

Hook = Callable[[str], None]
"""Called with the stage; may raise (a crash) or block (a hang), as the engine itself could."""
_HOOKS: Final[list[Hook]] = []


def before_use(stage: str) -> None:
    for hook in _HOOKS:
        hook(stage)


def install(hook: Hook) -> None:
    if hook not in _HOOKS:
        _HOOKS.append(hook)
