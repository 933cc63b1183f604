"""The model manager behind `make models`: download, resume, verify, unpack atomically.

A model is installed into `<dir>/<id>/` only after its archive is complete and its sha256 matches;
until then everything lives in `<dir>/.partial/` (resumable) or `<dir>/.tmp-<id>/` (unpacking), so
a failed, cut or corrupt download never leaves a half-installed model behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

import httpx

from agent.errors import StageError
from agent.yamlnode import ConfigError, Node, read_yaml

CONNECT_TIMEOUT_S: Final = 15.0
READ_TIMEOUT_S: Final = 60.0
RETRIES: Final = 3
"""Attempts per model; each one resumes from what the previous one got."""
MARKER: Final = ".installed"
KINDS: Final = ("asr", "tts", "llm")
UNPACK: Final = ("zip", "tar.gz", "none")


class ModelError(StageError):
    stage = "models"


@dataclass(frozen=True)
class ModelFile:
    url: str
    sha256: str | None
    """None: not pinned yet (see `install(..., pin=True)`)."""
    size: int | None
    """Bytes of the download, when known (progress and resume use the server's figure otherwise)."""
    unpack: str
    """zip, tar.gz, or none (kept as `filename`)."""
    filename: str


@dataclass(frozen=True)
class ModelSpec:
    id: str
    kind: str
    language: str
    licence: str
    description: str
    files: tuple[ModelFile, ...]


def _parse_file(node: Node) -> ModelFile:
    url = node.text("url", required=True)
    sha = node.raw("sha256")
    if sha is not None and (not isinstance(sha, str) or len(sha) != 64
                            or any(c not in "0123456789abcdef" for c in sha.lower())):
        raise node.error("sha256", "64 hexadecimal digits (or null while not pinned)", sha)
    size = node.raw("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise node.error("size", "a positive number of bytes (or null)", size)
    spec = ModelFile(url=url, sha256=sha.lower() if isinstance(sha, str) else None, size=size,
                     unpack=node.choice("unpack", "none", UNPACK),
                     filename=node.text("filename", url.rsplit("/", 1)[-1].split("?")[0]))
    node.close()
    return spec


def load_manifest(path: Path) -> list[ModelSpec]:
    file = str(path)
    root = Node(file, "", read_yaml(path))
    raw = root.raw("models")
    if not isinstance(raw, list) or not raw:
        raise root.error("models", "a non-empty list of models", raw)
    specs = []
    for i, item in enumerate(raw):
        node = Node(file, f"models[{i}]", item)
        raw_files = node.raw("files")
        if not isinstance(raw_files, list) or not raw_files:
            raise node.error("files", "a non-empty list of files", raw_files)
        spec = ModelSpec(
            id=node.text("id", required=True), kind=node.choice("kind", "", KINDS),
            language=node.text("language", required=True), licence=node.text("licence", required=True),
            description=node.text("description", "-"),
            files=tuple(_parse_file(Node(file, f"models[{i}].files[{j}]", f)) for j, f in enumerate(raw_files)),
        )
        node.close()
        specs.append(spec)
    root.close()
    ids = [s.id for s in specs]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ConfigError(file, "models", "unique ids", sorted(dup))
    return specs


def installed(models_dir: Path, spec: ModelSpec) -> Path | None:
    """The model's directory if it was installed completely (from the same pinned files)."""
    target = models_dir / spec.id
    marker = target / MARKER
    if not marker.exists():
        return None
    digests = marker.read_text().split()
    pinned = [f.sha256 for f in spec.files]
    if len(digests) == len(pinned) and all(p is None or p == d for p, d in zip(pinned, digests, strict=True)):
        return target
    return None


class Progress:
    """A one-line progress bar on a terminal, a line every 10 % otherwise (logs, CI)."""

    def __init__(self, label: str, total: int, out: TextIO = sys.stderr) -> None:
        self.label, self.total, self.out = label, max(total, 1), out
        self.tty = out.isatty()
        self.last_decile = -1
        self.started = time.monotonic()

    def update(self, done: int) -> None:
        frac = min(done / self.total, 1.0)
        if self.tty:
            bar = "#" * int(frac * 30)
            rate = done / max(time.monotonic() - self.started, 1e-3) / 1e6
            self.out.write(f"\r{self.label}: [{bar:<30}] {frac:5.1%} {done / 1e6:7.1f} MB {rate:5.1f} MB/s")
            self.out.flush()
        elif int(frac * 10) != self.last_decile:
            self.last_decile = int(frac * 10)
            self.out.write(f"{self.label}: {frac:.0%} ({done / 1e6:.1f} MB)\n")

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")


def download(url: str, size: int | None, partial: Path, *, client: httpx.Client,
             progress: Progress | None = None) -> None:
    """Fetch `url` into `partial`, resuming from its current size with an HTTP Range request."""
    last_error = ""
    for _attempt in range(RETRIES):
        have = partial.stat().st_size if partial.exists() else 0
        if size is not None and have > size:
            partial.unlink()
            have = 0
        if size is not None and have == size:
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with client.stream("GET", url, headers=headers) as resp:
                if resp.status_code == 416 and have:  # nothing left to send: we have it all
                    return
                if resp.status_code == 200 and have:
                    have = 0  # the server ignored Range: start over
                elif resp.status_code not in (200, 206):
                    raise ModelError(f"HTTP {resp.status_code} from {_host(url)}", retryable=resp.status_code >= 500)
                total = _total(resp, have) or size
                if progress is not None and total:
                    progress.total = total
                with open(partial, "r+b" if have else "wb") as f:
                    f.seek(have)
                    f.truncate()
                    done = have
                    for chunk in resp.iter_bytes():  # as it arrives: a cut loses nothing received
                        f.write(chunk)
                        done += len(chunk)
                        if size is not None and done > size:  # never more than the pinned size
                            raise ModelError(f"size mismatch: {_host(url)} sent more than the pinned {size} "
                                             "bytes; the download was deleted and nothing was installed")
                        if progress:
                            progress.update(done)
            got = partial.stat().st_size
            if size is not None and got == size:
                return
            if size is None and (total is None or got == total):
                return
            if size is not None and total is not None and got == total:  # the whole file, shorter than pinned
                partial.unlink()
                raise ModelError(f"size mismatch: {_host(url)} sent {got} bytes, {size} are pinned; the "
                                 "download was deleted and nothing was installed")
            last_error = f"connection closed at {got} of {total} bytes"
        except httpx.HTTPError as exc:
            last_error = f"{type(exc).__name__} talking to {_host(url)}"
        except ModelError as exc:
            if not exc.retryable:
                partial.unlink(missing_ok=True)
                raise
            last_error = str(exc)
    raise ModelError(f"download failed after {RETRIES} attempts ({last_error}); run again to resume", retryable=True)


def _total(resp: httpx.Response, have: int) -> int | None:
    if resp.status_code == 206:
        crange = resp.headers.get("content-range", "")
        if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
            return int(crange.rsplit("/", 1)[1])
    length = resp.headers.get("content-length")
    return (int(length) + (have if resp.status_code == 206 else 0)) if length and length.isdigit() else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def install(spec: ModelSpec, models_dir: Path, *, client: httpx.Client | None = None,
            out: TextIO = sys.stderr, pin: bool = False) -> Path:
    """Download, verify and unpack one model; returns its directory. Idempotent.

    A file without a pinned sha256 is refused unless `pin`: then its digest is printed and recorded
    in the marker, for the integrator to compare with the publisher's and write into the manifest."""
    done = installed(models_dir, spec)
    if done:
        return done
    unpinned = [f.filename for f in spec.files if f.sha256 is None]
    if unpinned and not pin:
        raise ModelError(f"{spec.id}: no sha256 pinned in the manifest for {', '.join(unpinned)}; run "
                         "`standardiste models install --pin` on a box you trust, check the printed digests "
                         "against the publisher's and add them to the manifest")
    partial_dir = models_dir / ".partial"
    partial_dir.mkdir(parents=True, exist_ok=True)
    own_client = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                                    follow_redirects=True)
    parts: list[tuple[ModelFile, Path, str]] = []
    try:
        for i, mf in enumerate(spec.files):
            partial = partial_dir / f"{spec.id}.{i}.part"
            progress = Progress(f"{spec.id} {mf.filename}", mf.size or 0, out)
            try:
                download(mf.url, mf.size, partial, client=client, progress=progress)
            except ModelError as exc:
                raise ModelError(f"{spec.id}: {mf.filename}: {exc}", retryable=exc.retryable) from exc
            finally:
                progress.done()
            digest = sha256_of(partial)
            if mf.sha256 is not None and digest != mf.sha256:
                partial.unlink()
                raise ModelError(f"{spec.id}: {mf.filename}: checksum mismatch (expected sha256 {mf.sha256}, "
                                 f"got {digest}); the download was deleted and nothing was installed")
            if mf.sha256 is None:
                out.write(f"{spec.id}: {mf.filename}: sha256 {digest} (pin it in the manifest)\n")
            parts.append((mf, partial, digest))
    finally:
        if own_client:
            client.close()
    tmp = models_dir / f".tmp-{spec.id}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for mf, partial, _ in parts:
            _unpack(mf, partial, tmp)
        (tmp / MARKER).write_text(" ".join(d for _, _, d in parts) + "\n")
        target = models_dir / spec.id
        old = models_dir / f".old-{spec.id}"
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)  # atomic: the model appears complete or not at all
        shutil.rmtree(old, ignore_errors=True)
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"{spec.id}: cannot unpack ({exc}); nothing was installed") from exc
    for _, partial, _ in parts:
        partial.unlink()
    return target


def _unpack(mf: ModelFile, archive: Path, dest: Path) -> None:
    if mf.unpack == "none":
        shutil.copyfile(archive, dest / mf.filename)
        return
    sub = dest / f".unpack-{mf.filename}"
    sub.mkdir()
    _extract(mf, archive, sub)
    # Archives usually hold one top folder: lift its content so the model is <dir>/<id>/...
    entries = list(sub.iterdir())
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else sub
    for item in root.iterdir():
        os.replace(item, dest / item.name)
    shutil.rmtree(sub)


def _extract(mf: ModelFile, archive: Path, dest: Path) -> None:
    if mf.unpack == "zip":
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                _check_member(member)
            z.extractall(dest)
    else:
        with tarfile.open(archive, "r:gz") as t:
            t.extractall(dest, filter="data")


def _check_member(name: str) -> None:
    if name.startswith("/") or ".." in Path(name).parts:
        raise zipfile.BadZipFile(f"unsafe path in archive: {name}")


def _host(url: str) -> str:
    return httpx.URL(url).host or url


def models_command(action: str, manifest: Path, models_dir: Path, only: list[str] | None, *, pin: bool) -> int:
    """`standardiste models install|status`."""
    specs = load_manifest(manifest)
    if only:
        unknown = set(only) - {s.id for s in specs}
        if unknown:
            print(f"unknown model id(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        specs = [s for s in specs if s.id in only]
    if action == "status":
        for spec in specs:
            where = installed(models_dir, spec)
            print(f"{spec.id:32} {spec.kind:4} {'installed in ' + str(where) if where else 'not installed'}"
                  f"  ({spec.licence})")
        return 0
    failed = 0
    for spec in specs:
        try:
            path = install(spec, models_dir, pin=pin)
            print(f"{spec.id}: installed in {path}")
        except ModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
