"""Structured extraction from a caller's words, within a hard time budget."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from agent.errors import StageError

DEFAULT_BUDGET_S: Final = 1.2
"""Longest the caller waits for the model on one turn, seconds; past it the dialogue goes on with
what the rules found."""


log = logging.getLogger(__name__)


class LlmError(StageError):
    stage = "llm"


@dataclass(frozen=True)
class Extraction:
    fields: dict[str, str | None] = field(default_factory=dict)
    """Field name -> value, None when the model found nothing (or had no time for it)."""
    complete: bool = False
    """Every asked field was filled or judged absent within the budget."""
    elapsed_s: float = 0.0


class Extractor(Protocol):
    name: str

    async def extract(self, text: str, fields: Sequence[str], budget_s: float = DEFAULT_BUDGET_S) -> Extraction:
        """Fill `fields` from `text`; returns by the budget whatever happens inside."""


async def within_budget(extractor: Extractor, text: str, fields: Sequence[str],
                        budget_s: float = DEFAULT_BUDGET_S) -> Extraction:
    """Any extractor, cut off at the budget: the caller is never kept waiting by a slow engine, and an
    engine that fails (whatever it raises) gives an empty extraction: the rules carry the call on."""
    started = time.monotonic()
    try:
        return await asyncio.wait_for(extractor.extract(text, fields, budget_s), budget_s)
    except TimeoutError:
        pass
    except Exception as exc:  # a crashed engine: logged by type only (the text is the caller's)
        log.warning("LLM %s failed (%s): the rules alone understand this turn", extractor.name, type(exc).__name__)
    return Extraction({f: None for f in fields}, complete=False, elapsed_s=time.monotonic() - started)
