"""Headless Chromium on a page served from a WSGI app in a thread: tests/e2e/browser.mjs (the
browser check the Rust serving tests use), run with Node from target/e2e/node where
playwright-core is installed. Without those tools the tests skip, unless KILN_E2E_REQUIRED=1
(scripts/test), where they fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

REPO = Path(__file__).resolve().parents[2]
E2E = Path(os.environ.get("KILN_E2E_DIR", REPO / "target" / "e2e"))
CHROMIUM = Path(os.environ.get("KILN_CHROMIUM", "/usr/bin/chromium"))


def require_browser() -> None:
    """Skips (or, with KILN_E2E_REQUIRED=1, fails) when Chromium or playwright-core is missing."""
    missing = [
        what
        for what, ok in [
            ("node", shutil.which("node") is not None),
            ("playwright-core", (E2E / "node" / "node_modules" / "playwright-core").is_dir()),
            ("chromium", CHROMIUM.is_file()),
        ]
        if not ok
    ]
    if missing:
        message = f"the browser test needs {', '.join(missing)} (scripts/test installs them)"
        if os.environ.get("KILN_E2E_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _ThreadingServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request, client_address):  # one thread per connection
        threading.Thread(target=self._handle, args=(request, client_address), daemon=True).start()

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)


@contextmanager
def serve(app) -> Iterator[str]:
    """Serves the WSGI `app` on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def browse(url: str, viewport: int = 400) -> tuple[bool, dict]:
    """Loads `url` with browser.mjs at a `viewport` px wide window; (passed, report)."""
    require_browser()
    runner = E2E / "node" / "browser.mjs"
    shutil.copy(REPO / "tests" / "e2e" / "browser.mjs", runner)
    env = dict(os.environ, KILN_VIEWPORT=str(viewport))
    result = subprocess.run(
        ["node", str(runner), url], capture_output=True, text=True, env=env, timeout=120
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"browser.mjs: {result.stdout}{result.stderr}")
    return result.returncode == 0, report


def expected_avif(manifest: dict, logical: str, viewport: int) -> str:
    """The AVIF a browser at `viewport` px (DPR 1) picks for a full-width `<picture>` of
    `logical`: the smallest width at least the viewport's, else the largest."""
    variants = [
        v for v in manifest["assets"][logical]["variants"] if v["content_type"] == "image/avif"
    ]
    assert variants, f"{logical} has no AVIF"
    fitting = sorted((v for v in variants if v["width"] >= viewport), key=lambda v: v["width"])
    chosen = fitting[0] if fitting else max(variants, key=lambda v: v["width"])
    return chosen["file"]


def assert_page_is_whole(report: dict, manifest: dict, viewport: int = 400) -> None:
    """No failed request or console error, modules ran, the font loaded, the AVIF of the width
    the viewport needs chosen, no layout shift, the stylesheet and entry module under SRI."""
    assert report["failures"] == [], report["failures"]
    assert report["marker"] == "ready" and report["font"], report
    picked = report["pictures"][0]["currentSrc"]
    assert picked.endswith(expected_avif(manifest, "img/rocket.jpg", viewport)), picked
    assert report["layoutShift"] == 0, report["shifts"]
    tags = {t["tag"] for t in report["sri"] if (t["integrity"] or "").startswith("sha384-")}
    assert {"link", "script"} <= tags, report["sri"]


def assert_sri_refused(ok: bool, report: dict, hashed_css: str) -> None:
    """The page failed because Chromium refused `hashed_css` on its integrity."""
    assert not ok, report
    assert any(
        "Failed to find a valid digest in the 'integrity' attribute" in f and hashed_css in f
        for f in report["failures"]
    ), report["failures"]


def tamper(static_root: Path, hashed_css: str) -> None:
    """Changes one byte of a built stylesheet (same length) and drops its precompressed
    siblings, as a corrupted CDN copy would look."""
    path = static_root / hashed_css
    data = bytearray(path.read_bytes())
    at = data.index(b"}")
    data[at - 1 : at] = b" " if data[at - 1 : at] != b" " else b";"
    path.write_bytes(bytes(data))
    for suffix in (".br", ".gz"):
        static_root.joinpath(hashed_css + suffix).unlink(missing_ok=True)
