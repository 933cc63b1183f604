"""webrtcvad (what audio/vad.py uses) against Silero VAD (the ONNX model from the pipecat-ai wheel,
models/smart-turn/silero_vad.onnx) on the same French utterances with mid-sentence pauses, clean
and with street, car and wind noise made by sox, at 8 kHz as the line gives them.

Each engine is run as the product runs it (audio/vad.py TurnDetector: the energy floor, Silero's two
thresholds and state). Truth: a 20 ms frame is speech when the clean utterance is (RMS > 300 before
noise). Printed per
condition: speech frames found, silent frames taken as speech (the pauses the end of a turn needs),
pauses of 500 ms seen as at least 200 ms of silence, and the cost of a frame.

    .venv/bin/python scripts/compare_vad.py      (make bench runs it; sox from make deps)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.audio.frames import AudioFrame  # noqa: E402
from agent.audio.vad import TurnDetector, VadEngine, VadSettings  # noqa: E402
from tests.signals import FRAME, RATE, speech  # noqa: E402 (espeak-ng French, trimmed, at 8 kHz)
from tests.signals import frame_rms as _rms  # noqa: E402

PAUSE = np.zeros(RATE // 2, np.int16)
TEXTS = ("Bonjour, euh, | mon évier est bouché | depuis ce matin.", "Jean | Martin.",
         "zéro six, | douze, | trente-quatre, | cinquante-six.", "C'est au douze | avenue Jean Médecin, | à Nice.",
         "Oui | c'est ça.", "Ma chaudière fait un bruit bizarre | et elle s'arrête toute seule.")
NOISES = {  # sox synth: the noise's colour and shape, then its level against the speech (SNR, dB)
    "street": (["synth", "pinknoise", "tremolo", "0.7", "40"], 10),
    "car": (["synth", "brownnoise", "lowpass", "400"], 5),
    "wind": (["synth", "brownnoise", "tremolo", "0.3", "80", "highpass", "60"], 5),
}
SILERO = REPO / "models" / "smart-turn" / "silero_vad.onnx"


def utterance(text: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The spoken text with its marked pauses, 0.5 s of silence around, and the pauses' frame spans."""
    parts: list[np.ndarray] = [PAUSE]
    pauses = []
    at = len(PAUSE)
    for k, piece in enumerate(p.strip() for p in text.split("|")):
        if k:
            pauses.append((at // FRAME, (at + len(PAUSE)) // FRAME))
            parts.append(PAUSE)
            at += len(PAUSE)
        s = speech(piece)
        parts.append(s)
        at += len(s)
    parts.append(PAUSE)
    return np.concatenate(parts), pauses


def noise(kind: str, seconds: float, folder: Path) -> np.ndarray:
    args, _ = NOISES[kind]
    out = folder / f"{kind}.wav"
    synth = [args[0], f"{seconds:.2f}", *args[1:]]
    subprocess.run(["sox", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(out), *synth], check=True,
                   capture_output=True)
    with wave.open(str(out)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def mixed(clean: np.ndarray, kind: str | None, folder: Path) -> np.ndarray:
    if kind is None:
        return clean
    n = noise(kind, len(clean) / RATE + 0.1, folder)[:len(clean)]
    voiced = clean[np.repeat(_rms(clean) > 300, FRAME)[:len(clean)]].astype(np.float64)
    snr = NOISES[kind][1]
    gain = np.sqrt((voiced ** 2).mean() / max((n ** 2).mean(), 1e-9) / 10 ** (snr / 10))
    return np.clip(clean + gain * n, -32768, 32767).astype(np.int16)


def detector_frames(engine: str) -> Callable[[np.ndarray], tuple[np.ndarray, float]]:
    """Each 20 ms frame as the product's turn detector judges it (`TurnDetector.is_voiced`): the energy
    floor and the engine, Silero with its two thresholds (start, going on) and its state cleared in
    the quiet, as on a call."""

    def frames(x: np.ndarray) -> tuple[np.ndarray, float]:
        det = TurnDetector(VadSettings(engine=VadEngine(engine), silero_model=SILERO), RATE)
        n = len(x) // FRAME
        out = np.zeros(n, bool)
        started = time.perf_counter()
        for i in range(n):
            frame = AudioFrame(x[i * FRAME:(i + 1) * FRAME], RATE, i * FRAME / RATE)
            det.push(frame)
            out[i] = det.is_voiced(frame)
        return out, (time.perf_counter() - started) * 1000 / n

    return frames


def score(found: np.ndarray, truth: np.ndarray, pauses: list[tuple[int, int]]) -> tuple[int, int, int, int, int]:
    n = min(len(found), len(truth))
    found, truth = found[:n], truth[:n]
    seen = 0
    for a, b in pauses:
        run = best = 0
        for v in found[a:b]:
            run = 0 if v else run + 1
            best = max(best, run)
        seen += best * 20 >= 200
    return int((found & truth).sum()), int(truth.sum()), int((found & ~truth).sum()), int((~truth).sum()), seen


def main() -> int:
    if not SILERO.exists():
        print("compare_vad: models/smart-turn/silero_vad.onnx missing (make venv installs it)", file=sys.stderr)
        return 2
    clean = [utterance(t) for t in TEXTS]
    print(f"{'condition':<16} {'VAD':<10} {'speech found':>14} {'silence as speech':>18} {'pauses seen':>12} "
          f"{'ms/frame':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in (None, *NOISES):
            label = "clean" if kind is None else f"{kind} {NOISES[kind][1]} dB"
            for name, detect in (("webrtcvad", detector_frames("webrtc")), ("silero", detector_frames("silero"))):
                totals = np.zeros(5, int)
                costs = []
                for signal, pauses in clean:
                    truth = _rms(signal) > 300
                    found, cost = detect(mixed(signal, kind, Path(tmp)))
                    totals += score(found, truth, pauses)
                    costs.append(cost)
                hit, speech_n, false, silent_n, seen = (int(v) for v in totals)
                pauses_n = sum(len(p) for _, p in clean)
                print(f"{label:<16} {name:<10} {100 * hit / speech_n:13.0f}% {100 * false / silent_n:17.0f}% "
                      f"{seen:>6}/{pauses_n:<5} {np.mean(costs):9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
