#!/usr/bin/env bash
# Debian packages Standardiste needs at run and test time (not Asterisk: see install-asterisk.sh).
set -euo pipefail
pkgs=(
  espeak-ng        # fixed prompts and the fallback voice
  openssl          # crypt hash of the ARI password
  python3-venv
  build-essential  # llama-cpp-python compiles llama.cpp (once, then a cached wheel)
  cmake
  chromium         # the dashboard's browser test (driven by Playwright with this executable)
  tcpdump          # make bench: the phones' timings come from a capture of the loopback
  sox              # make bench: street, car and wind noise for the VAD comparison
  sip-tester       # the tests' INVITE bursts (SIPp): the call cap and Asterisk under load
)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
echo "install-system-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: need root to apt-get install ${missing[*]}" >&2
    exit 1
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
