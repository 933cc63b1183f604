#!/usr/bin/env bash
# Smart Turn v3.2 (the end-of-turn model, BSD-2, Daily) and Silero VAD (MIT) ship inside the pipecat-ai
# wheel on PyPI. Installing pipecat-ai itself would bring 25 dependencies (numba, openai, Pillow,
# resampy...) and its package import needs half of them; we take the wheel alone (pip download
# --no-deps, pinned version and sha256), cached in $STANDARDISTE_CACHE/wheels, and unpack the two ONNX
# models and the wheel's numpy Whisper feature extractor into DEST (see agent/audio/endpoint.py).
# Usage: install-turn-model.sh PYTHON DEST   (the virtualenv's python; DEST: models/smart-turn)
set -euo pipefail
PY="$1"
DEST="$2"
VERSION=1.14.0
SHA256=0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44
CACHE="${STANDARDISTE_CACHE:-/var/cache/standardiste}"
WHEELS="$CACHE/wheels"
WHEEL="$WHEELS/pipecat_ai-$VERSION-py3-none-any.whl"
STAMP="$DEST/.installed"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION $SHA256" ]; then
    exit 0
fi
mkdir -p "$WHEELS"
if [ ! -f "$WHEEL" ]; then
    tmp=$(mktemp -d)
    "$PY" -m pip download -q --no-deps -d "$tmp" "pipecat-ai==$VERSION"
    mv "$tmp"/pipecat_ai-"$VERSION"-py3-none-any.whl "$WHEEL"
    rm -rf "$tmp"
fi
if ! echo "$SHA256  $WHEEL" | sha256sum -c --quiet; then
    echo "install-turn-model: $WHEEL does not have the pinned sha256 $SHA256; nothing installed" >&2
    exit 1
fi
"$PY" - "$WHEEL" "$DEST" <<'EOF'
import os, shutil, sys, tempfile, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
members = {
    "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx": "smart-turn-v3.2-cpu.onnx",
    "pipecat/audio/vad/data/silero_vad.onnx": "silero_vad.onnx",
    "pipecat/audio/turn/smart_turn/_whisper_features.py": "whisper_features.py",
    "pipecat_ai-1.14.0.dist-info/licenses/LICENSE": "LICENSE.pipecat",
}
os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
tmp = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(dest)))
with zipfile.ZipFile(wheel) as z:
    for name, target in members.items():
        with z.open(name) as src, open(os.path.join(tmp, target), "wb") as out:
            shutil.copyfileobj(src, out)
shutil.rmtree(dest, ignore_errors=True)
os.chmod(tmp, 0o755)
os.replace(tmp, dest)
EOF
echo "$VERSION $SHA256" > "$STAMP"
echo "install-turn-model: Smart Turn v3.2 and Silero VAD from pipecat-ai $VERSION in $DEST"
