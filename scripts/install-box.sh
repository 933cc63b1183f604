#!/usr/bin/env bash
# Install (or upgrade) Standardiste on a PBX box that runs Asterisk, with systemd.
#
#   sudo scripts/install-box.sh              # or: sudo make install
#   scripts/install-box.sh --root DIR --no-venv   # into a throwaway root (the tests)
#
# Code in /opt/standardiste (a venv), config in /etc/standardiste (kept on upgrade), data in
# /var/lib/standardiste (kept), a system user `standardiste`, the systemd unit with Restart=always
# and hardening, a daily backup of the store (SQLite online backup), log rotation.
set -euo pipefail
ROOT=""
PREFIX=/opt/standardiste
VENV=1
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="$2"; shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        --no-venv) VENV=0; shift ;;
        *) echo "install-box: unknown option $1" >&2; exit 2 ;;
    esac
done
SRC="$(cd "$(dirname "$0")/.." && pwd)"
ETC="$ROOT/etc/standardiste"
DATA="$ROOT/var/lib/standardiste"
say() { echo "install-box: $*"; }

if [ -z "$ROOT" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "install-box: run as root (sudo)" >&2; exit 1; }
    group=standardiste
    getent group asterisk >/dev/null && group=asterisk   # Asterisk reads the prompts, writes messages
    getent group "$group" >/dev/null || groupadd --system "$group"
    if ! id standardiste >/dev/null 2>&1; then
        useradd --system --gid "$group" --home-dir /var/lib/standardiste --shell /usr/sbin/nologin standardiste
        say "system user standardiste (group $group) created"
    fi
fi

# The code: replaced on each install (the config and the data are not).
install -d -m 0755 "$ROOT$PREFIX"
rm -rf "$ROOT$PREFIX/src.new"
mkdir -p "$ROOT$PREFIX/src.new"
( cd "$SRC" && tar cf - --exclude='__pycache__' agent asterisk-conf scripts pyproject.toml setup.cfg README.md \
    models/manifest.yaml ) | ( cd "$ROOT$PREFIX/src.new" && tar xf - )
rm -rf "$ROOT$PREFIX/src" && mv "$ROOT$PREFIX/src.new" "$ROOT$PREFIX/src"
if [ "$VENV" = 1 ]; then
    python3 -m venv "$ROOT$PREFIX/.venv"
    "$ROOT$PREFIX/.venv/bin/pip" install -q --upgrade pip
    "$ROOT$PREFIX/.venv/bin/pip" install -q "$ROOT$PREFIX/src"
    say "installed into $PREFIX/.venv"
fi

# Config: the example only when there is none (an upgrade keeps the integrator's).
install -d -m 0750 "$ETC"
if [ ! -e "$ETC/standardiste.yaml" ]; then
    install -m 0640 "$SRC/asterisk-conf/standardiste.example.yaml" "$ETC/standardiste.yaml"
    say "config example copied to /etc/standardiste/standardiste.yaml: edit it"
fi

# Data: private to the service (and to Asterisk's group for prompts and messages).
for d in "$DATA" "$DATA/prompts" "$DATA/messages" "$DATA/models" "$DATA/backups" "$ROOT/var/cache/standardiste"; do
    install -d -m 0750 "$d"
done
if [ "$VENV" = 1 ]; then
    # The end-of-turn model (Smart Turn, from the pipecat-ai wheel pinned by sha256): with it, a reply
    # starts 200 ms after a caller who is done instead of 700 ms (README "Performance").
    bash "$SRC/scripts/install-turn-model.sh" "$ROOT$PREFIX/.venv/bin/python" "$DATA/models/smart-turn" \
        || say "the end-of-turn model could not be installed: the end of a turn is then the words or the 700 ms pause"
fi
if [ -z "$ROOT" ]; then
    chown -R standardiste: "$DATA" /var/cache/standardiste
    chgrp standardiste "$ETC" 2>/dev/null || chgrp "$(id -gn standardiste)" "$ETC"
fi

# systemd: the service, the daily backup; log rotation for the optional log files.
install -d -m 0755 "$ROOT/etc/systemd/system" "$ROOT/etc/logrotate.d"
for unit in standardiste.service standardiste-backup.service standardiste-backup.timer; do
    sed "s|/opt/standardiste|$PREFIX|g" "$SRC/scripts/$unit" > "$ROOT/etc/systemd/system/$unit"
    chmod 0644 "$ROOT/etc/systemd/system/$unit"
done
install -m 0644 "$SRC/scripts/standardiste.logrotate" "$ROOT/etc/logrotate.d/standardiste"

if [ -z "$ROOT" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now standardiste-backup.timer
    systemctl enable standardiste.service
    say "enabled; start it once the config is done: systemctl start standardiste"
fi
cat <<MSG
install-box: done. Next:
  1. edit /etc/standardiste/standardiste.yaml (README "Installing on a PBX box")
  2. $PREFIX/.venv/bin/standardiste ari-user --password-file /etc/standardiste/ari-password --out /etc/asterisk/ari_users.conf
  3. $PREFIX/.venv/bin/standardiste set-password --config /etc/standardiste/standardiste.yaml
  4. $PREFIX/.venv/bin/standardiste doctor --config /etc/standardiste/standardiste.yaml
  5. systemctl start standardiste
MSG
