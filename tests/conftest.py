"""Shared fixtures: tiny images, a tiny saved U-Net, the real-sample folder (skips when absent)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_SAMPLES = Path(os.environ.get("SEAICE_REAL_SAMPLES", ROOT.parent / "shared" / "real-samples"))
ROSS_SEA = REAL_SAMPLES / "ross_sea_2019-11_render_1086px.png"


@pytest.fixture
def ross_sea_path() -> Path:
    if not ROSS_SEA.is_file():
        pytest.skip(f"real sample not available ({ROSS_SEA})")
    return ROSS_SEA


@pytest.fixture(scope="session")
def tiny_unet(tmp_path_factory) -> Path:
    """An untrained depth-2, 4-filter U-Net with fixed weights, saved as training saves it
    (``unet_auto.keras`` and a ``training.json`` saying it takes filtered levels)."""
    tf = pytest.importorskip("tensorflow")
    from seaice_utils.training.unet import build_unet

    d = tmp_path_factory.mktemp("tiny_unet")
    tf.keras.utils.set_random_seed(3)
    path = d / "unet_auto.keras"
    build_unet(depth=2, base_filters=4, name="unet_auto").save(path)
    (d / "training.json").write_text(json.dumps({"models": {"auto": {
        "labels": "auto", "input": "filtered", "path": str(path),
        "model": {"tile_size": 256, "input_channels": 1}}}}))
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def grey_rgb(values, shape=None) -> np.ndarray:
    """RGB uint8 image whose three channels equal ``values``."""
    v = np.asarray(values, np.uint8)
    if shape is not None:
        v = np.broadcast_to(v, shape)
    return np.repeat(v[..., None], 3, axis=-1).copy()


class LoopbackHandler(BaseHTTPRequestHandler):
    """Base of the tests' loopback HTTP servers (STAC APIs, COGs): quiet, HTTP/1.1, ``_send``
    with a length and byte ranges announced; subclasses write ``_route`` (GET, POST, HEAD)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code, body: bytes, ctype="application/json", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self):
        raise NotImplementedError

    def do_GET(self):
        self._route()

    do_POST = do_HEAD = do_GET


@contextlib.contextmanager
def loopback_server(handler, state: dict):
    """Serve ``handler`` on a free loopback port; ``state["base"]`` is its URL while it runs."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    state["base"] = f"http://127.0.0.1:{srv.server_address[1]}"
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield state["base"]
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(timeout=5)
