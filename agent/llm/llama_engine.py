"""llama.cpp (llama-cpp-python) extraction by field filling.

The prompt is a fixed French prefix (instructions and examples) + the caller's words + a JSON
skeleton; the model writes only each value, up to its closing quote. The JSON is therefore valid by
construction, whatever the model writes, and the fixed prefix stays in llama.cpp's KV cache from
one request to the next (only the caller's words are evaluated anew).

One model per process, used by one request at a time (FIFO across calls); each request stops at its
deadline, checked between tokens.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, cast

from agent import engine_hooks
from agent.llm.base import DEFAULT_BUDGET_S, Extraction, LlmError

log = logging.getLogger(__name__)

FIELD_LABELS: Final = {"name": "nom", "address": "adresse", "problem": "probleme", "phone": "telephone"}
MAX_VALUE_TOKENS: Final = 24
PREFIX: Final = """Tu remplis la fiche d'un appel reçu par un artisan. Une information absente s'écrit "".

Appel: "Bonjour, je suis Jean Martin, j'habite 3 avenue Foch à Lyon, mon chauffe-eau fuit."
{"nom": "Jean Martin", "adresse": "3 avenue Foch, Lyon", "probleme": "chauffe-eau qui fuit", "telephone": ""}

Appel: "Oui c'est pour une prise qui ne marche plus dans la cuisine, rappelez-moi au 06 12 34 56 78."
{"nom": "", "adresse": "", "probleme": "prise qui ne marche plus", "telephone": "06 12 34 56 78"}

Appel: "Sophie Bernard, 27 boulevard Gambetta à Toulouse. Ma porte est bloquée."
{"nom": "Sophie Bernard", "adresse": "27 boulevard Gambetta, Toulouse", "probleme": "porte bloquée", "telephone": ""}

"""


class LlamaExtractor:
    def __init__(self, model_path: Path, *, threads: int = 2, context: int = 1024) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LlmError("llama-cpp-python is not installed (make venv builds it)") from exc
        started = time.monotonic()
        try:
            self._llm = Llama(model_path=str(model_path), n_ctx=context, n_threads=threads, verbose=False)
        except Exception as exc:  # llama.cpp raises ValueError/RuntimeError on a bad file
            raise LlmError(f"cannot load the model {model_path}: {exc}") from exc
        self.load_seconds = time.monotonic() - started
        self.name = f"llama.cpp:{model_path.name}"
        # One worker thread: llama.cpp contexts are not thread-safe; requests queue FIFO there, and
        # one whose deadline passed while queued returns at once when its turn comes.
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm")
        log.info("LLM %s loaded in %.2f s", self.name, self.load_seconds)
        self._fill(PREFIX + 'Appel: "bonjour"\n{"nom": "', ["name"], time.monotonic() + 30)  # warm the cache

    async def extract(self, text: str, fields: Sequence[str], budget_s: float = DEFAULT_BUDGET_S) -> Extraction:
        unknown = [f for f in fields if f not in FIELD_LABELS]
        if unknown or not fields:
            raise LlmError(f"cannot extract {unknown or 'nothing'}: fields are {', '.join(FIELD_LABELS)}")
        started = time.monotonic()
        deadline = started + budget_s
        empty = Extraction({f: None for f in fields}, complete=False)
        loop = asyncio.get_running_loop()
        prompt = PREFIX + f'Appel: "{_clean(text)}"\n{{"{FIELD_LABELS[fields[0]]}": "'
        future = loop.run_in_executor(self._pool, self._fill, prompt, list(fields), deadline)
        try:
            values, complete = await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return Extraction(empty.fields, complete=False, elapsed_s=time.monotonic() - started)
        return Extraction(values, complete=complete, elapsed_s=time.monotonic() - started)

    def _fill(self, prompt: str, fields: list[str], deadline: float) -> tuple[dict[str, str | None], bool]:
        from llama_cpp import StoppingCriteriaList

        engine_hooks.before_use("llm")  # tests only (STANDARDISTE_FAULTS): a crash or a hang of llama.cpp's thread

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            return time.monotonic() > deadline

        values: dict[str, str | None] = {f: None for f in fields}
        for i, name in enumerate(fields):
            if time.monotonic() > deadline:
                return values, False
            out = self._llm.create_completion(prompt, max_tokens=MAX_VALUE_TOKENS, temperature=0.0, stop=['"', "\n"],
                                              stopping_criteria=StoppingCriteriaList([past_deadline]))
            choice = cast(dict[str, Any], out)["choices"][0]
            if choice.get("finish_reason") != "stop" and time.monotonic() > deadline:
                return values, False
            value = str(choice["text"]).strip()
            values[name] = value or None
            if i + 1 < len(fields):
                prompt += json.dumps(value, ensure_ascii=False)[1:-1] + f'", "{FIELD_LABELS[fields[i + 1]]}": "'
        return values, True


def _clean(text: str) -> str:
    """The caller's words inside the quoted prompt line."""
    return " ".join(text.replace('"', "'").split())[:600]
