"""`make models` against a real local HTTP server: success, resume after a cut, wrong checksum,
server unreachable. The server honours Range and can cut a transfer on purpose."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.models import MARKER, ModelError, ModelFile, ModelSpec, install, installed, load_manifest
from agent.yamlnode import ConfigError
from tests.conftest import REPO


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        """path -> bytes after which the next response is cut (once)."""
        self.requests: list[tuple[str, str | None]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: ModelServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Range")))
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.server.cut_after.pop(self.path, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    srv = ModelServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def zipped_model(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(f"vosk-model-test/{name}", data)
    return buf.getvalue()


def spec_for(server: ModelServer, path: str, data: bytes, *, sha: str | None = "auto", unpack: str = "zip",
             size: int | None = None) -> ModelSpec:
    server.files[path] = data
    digest = hashlib.sha256(data).hexdigest() if sha == "auto" else sha
    return ModelSpec("test-model", "asr", "fr", "Apache-2.0", "test",
                     (ModelFile(server.base + path, digest, size, unpack, path.rsplit("/", 1)[-1]),))


MODEL = {"am/final.mdl": b"A" * 300_000, "conf/mfcc.conf": b"--sample-frequency=16000\n", "README": b"x"}


def test_install_downloads_verifies_and_unpacks(server: ModelServer, tmp_path: Path) -> None:
    spec = spec_for(server, "/m.zip", zipped_model(MODEL))
    out = io.StringIO()
    path = install(spec, tmp_path, out=out)
    assert path == tmp_path / "test-model"
    assert (path / "am/final.mdl").read_bytes() == MODEL["am/final.mdl"]
    assert installed(tmp_path, spec) == path
    assert "100%" in out.getvalue()  # progress is shown
    assert not list((tmp_path / ".partial").iterdir())
    # A second run costs nothing: no request is made.
    before = len(server.requests)
    assert install(spec, tmp_path) == path
    assert len(server.requests) == before


def test_a_cut_download_resumes_where_it_stopped(server: ModelServer, tmp_path: Path) -> None:
    data = zipped_model(MODEL)
    spec = spec_for(server, "/m.zip", data)
    server.cut_after["/m.zip"] = 100_000
    path = install(spec, tmp_path)
    assert (path / "am/final.mdl").read_bytes() == MODEL["am/final.mdl"]
    ranges = [r for p, r in server.requests if p == "/m.zip"]
    assert ranges[0] is None and len(ranges) == 2, ranges
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 100_000


def test_resume_survives_a_stopped_command(server: ModelServer, tmp_path: Path) -> None:
    data = zipped_model(MODEL)
    spec = spec_for(server, "/m.zip", data)
    partial = tmp_path / ".partial"
    partial.mkdir()
    (partial / "test-model.0.part").write_bytes(data[:50_000])  # what a killed run left
    install(spec, tmp_path)
    assert server.requests == [("/m.zip", "bytes=50000-")]


def test_wrong_checksum_installs_nothing(server: ModelServer, tmp_path: Path) -> None:
    spec = spec_for(server, "/m.zip", zipped_model(MODEL), sha="0" * 64)
    with pytest.raises(ModelError, match=r"checksum mismatch .*nothing was installed"):
        install(spec, tmp_path)
    assert not (tmp_path / "test-model").exists()
    assert not list((tmp_path / ".partial").iterdir())
    assert installed(tmp_path, spec) is None


def test_a_corrupt_archive_installs_nothing(server: ModelServer, tmp_path: Path) -> None:
    spec = spec_for(server, "/m.zip", b"this is not a zip file" * 100)
    with pytest.raises(ModelError, match="cannot unpack"):
        install(spec, tmp_path)
    assert not (tmp_path / "test-model").exists()
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    spec = ModelSpec("test-model", "asr", "fr", "MIT", "-",
                     (ModelFile(f"http://127.0.0.1:{port}/m.zip", "0" * 64, None, "zip", "m.zip"),))
    with pytest.raises(ModelError, match=r"ConnectError talking to 127\.0\.0\.1.*run again to resume"):
        install(spec, tmp_path)
    assert not (tmp_path / "test-model").exists()


def test_http_error_is_reported(server: ModelServer, tmp_path: Path) -> None:
    spec = spec_for(server, "/m.zip", b"x")
    server.files.clear()
    with pytest.raises(ModelError, match=r"HTTP 404 from 127\.0\.0\.1"):
        install(spec, tmp_path)


def test_unpinned_files_need_pin_and_print_their_digest(server: ModelServer, tmp_path: Path) -> None:
    data = b"GGUF" + b"\0" * 1000
    spec = spec_for(server, "/model.gguf", data, sha=None, unpack="none")
    with pytest.raises(ModelError, match="no sha256 pinned"):
        install(spec, tmp_path)
    out = io.StringIO()
    path = install(spec, tmp_path, pin=True, out=out)
    assert (path / "model.gguf").read_bytes() == data
    assert hashlib.sha256(data).hexdigest() in out.getvalue()
    assert (path / MARKER).exists()


def test_the_manifest_lists_the_production_french_models_pinned() -> None:
    """Every production download has its digest and size, and a Hugging Face URL names a revision
    (a commit), never `main`: `make models` needs no PIN=1 and installs exactly these bytes."""
    specs = {s.id: s for s in load_manifest(REPO / "models/manifest.yaml")}
    assert {s.kind for s in specs.values()} == {"asr", "tts", "llm"}
    for spec in specs.values():
        assert spec.licence and all(f.url.startswith("https://") for f in spec.files)
        for f in spec.files:
            assert f.sha256 is not None and f.size is not None and f.size > 1000, f
            if "huggingface.co" in f.url:
                assert re.search(r"/resolve/[0-9a-f]{40}/", f.url), f.url
    assert specs["vosk-fr-small"].files[0].size == 42233323


@pytest.mark.parametrize("served", [b"x" * 5000, b"x" * 3000], ids=["longer", "shorter"])
def test_a_download_of_another_size_than_pinned_installs_nothing(server: ModelServer, tmp_path: Path,
                                                                  served: bytes) -> None:
    spec = spec_for(server, "/model.gguf", served, unpack="none", size=4000)
    with pytest.raises(ModelError, match=r"^test-model: model\.gguf: size mismatch: .*nothing was installed$"):
        install(spec, tmp_path)
    assert not (tmp_path / "test-model").exists()
    assert not list((tmp_path / ".partial").iterdir())


def test_a_bad_manifest_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "manifest.yaml"
    bad.write_text("models:\n  - id: x\n    kind: asr\n    language: fr\n    licence: MIT\n"
                   "    files:\n      - url: https://e/x.zip\n        sha256: abc\n")
    with pytest.raises(ConfigError, match=r"models\[0\]\.files\[0\]\.sha256: expected 64 hexadecimal"):
        load_manifest(bad)


def test_models_command_reports_without_traceback(server: ModelServer, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    server.files["/m.zip"] = zipped_model(MODEL)
    manifest.write_text(f"models:\n  - id: test-model\n    kind: asr\n    language: fr\n    licence: MIT\n"
                        f"    files:\n      - url: {server.base}/m.zip\n        sha256: '{'1' * 64}'\n"
                        f"        unpack: zip\n")
    cmd = [str(REPO / ".venv/bin/standardiste"), "models", "install", "--manifest", str(manifest),
           "--dir", str(tmp_path / "models")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 1
    assert "checksum mismatch" in out.stderr and "Traceback" not in out.stderr
