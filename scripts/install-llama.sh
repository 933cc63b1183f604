#!/usr/bin/env bash
# llama-cpp-python has no binary wheel on PyPI: it compiles llama.cpp (4-13 min on 2 cores).
# Build a portable wheel once into $STANDARDISTE_CACHE/wheels and install from there afterwards.
# Usage: install-llama.sh PIP   (the virtualenv's pip)
set -euo pipefail
PIP="$1"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE="${STANDARDISTE_CACHE:-/var/cache/standardiste}"
WHEELS="$CACHE/wheels"
mkdir -p "$WHEELS"
if "$PIP" show llama-cpp-python 2>/dev/null | grep -q "^Version: $VERSION$"; then
    exit 0
fi
wheel=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
    echo "install-llama: building llama-cpp-python $VERSION (one time, several minutes; cached in $WHEELS)"
    tmp=$(mktemp -d)
    # Portable: no -march=native, so the cached wheel runs on any x86-64 box of the same distro.
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF" \
        CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$PIP" wheel -q --no-deps -w "$tmp" "llama-cpp-python==$VERSION"
    mv "$tmp"/llama_cpp_python-*.whl "$WHEELS"/
    rm -rf "$tmp"
    wheel=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl | head -n1)
fi
"$PIP" install -q "$wheel"
