"""webrtcvad (what audio/vad.py uses) against Silero VAD (the ONNX model from the pipecat-ai wheel,
models/smart-turn/silero_vad.onnx) on the same French utterances with mid-sentence pauses, clean
and with street, car and wind noise made by sox, at 8 kHz as the line gives them.

Truth: a 20 ms frame is speech when the clean utterance is (RMS > 300 before noise). Printed per
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
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.audio.vad import DEFAULT_AGGRESSIVENESS, DEFAULT_MIN_RMS  # noqa: E402
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


def webrtc_frames(x: np.ndarray) -> tuple[np.ndarray, float]:
    import webrtcvad

    vad = webrtcvad.Vad(DEFAULT_AGGRESSIVENESS)
    n = len(x) // FRAME
    out = np.zeros(n, bool)
    started = time.perf_counter()
    for i in range(n):
        f = x[i * FRAME:(i + 1) * FRAME]
        rms = float(np.sqrt((f.astype(np.float64) ** 2).mean()))
        out[i] = rms >= DEFAULT_MIN_RMS and vad.is_speech(f.astype("<i2").tobytes(), RATE)
    return out, (time.perf_counter() - started) * 1000 / n


def silero_frames(x: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, float]:
    """Silero v5 at 8 kHz: 256-sample chunks with 32 samples of context and its recurrent state; each
    20 ms frame takes the chunk its middle falls in."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(SILERO), sess_options=options, providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, 32), np.float32)
    audio = x.astype(np.float32) / 32768.0
    chunks = len(audio) // 256
    probs = np.zeros(chunks)
    started = time.perf_counter()
    for c in range(chunks):
        chunk = np.concatenate([context, audio[c * 256:(c + 1) * 256][np.newaxis]], axis=1)
        out, state = session.run(None, {"input": chunk, "state": state, "sr": np.array(RATE, np.int64)})
        probs[c] = float(out[0][0])
        context = chunk[:, -32:]
    cost = (time.perf_counter() - started) * 1000 / max(1, len(audio) // FRAME)
    n = len(x) // FRAME
    centre = (np.arange(n) * FRAME + FRAME // 2) // 256
    return probs[np.minimum(centre, chunks - 1)] >= threshold, cost


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
            for name, detect in (("webrtcvad", webrtc_frames), ("silero", silero_frames)):
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
