"""kiln for Flask: ``Kiln(app)`` or ``Kiln().init_app(app)``.

- ``static_url_for(endpoint, **values)``, a drop-in for flask-static-digest's (same URLs from
  the same ``cache_manifest.json``, same host URL setting), reading the manifest kiln writes in the
  static folder, and re-reading it after a build;
- Jinja globals ``static_url_for``, ``kiln_url``, ``kiln_css``, ``kiln_js``, ``kiln_preload``,
  ``kiln_picture``, ``kiln_importmap`` (see :mod:`kiln`);
- ``flask kiln build [KILN BUILD FLAGS]``: builds ``KILN_SRC`` into the static folder;
- fingerprinted files (``name.<12 hex>.ext``) served with
  ``Cache-Control: public, max-age=31536000, immutable``.

Config: ``KILN_SRC`` (default: ``assets`` in the app's root path), ``KILN_CONFIG`` (a
``kiln.toml``; default: none, or ``kiln.toml`` in the current directory as ``kiln build`` reads
it), ``KILN_HOST_URL`` (a CDN origin prefixed to every URL; falls back to
``FLASK_STATIC_DIGEST_HOST_URL``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
from typing import Any, Callable

import click
from flask import Blueprint, Flask, Response, current_app, has_request_context, request, url_for

import kiln
from kiln._html import jinja_globals

__all__ = ["HASHED", "IMMUTABLE_MAX_AGE", "Kiln"]

logger = logging.getLogger("kiln")

#: A fingerprinted file name (kiln's default ``hash_length`` is 12).
HASHED = re.compile(r"\.[0-9a-f]{12}\.[^/]+$")
IMMUTABLE_MAX_AGE = 31536000


class _CacheManifest:
    """``cache_manifest.json`` of one static folder, re-read when it changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._key: tuple[int, int, int] | None = None
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self) -> dict[str, str]:
        try:
            st = os.stat(self.path)
        except OSError:
            self._key, self._data = None, {}
            return self._data
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key != self._key:
            with self._lock:
                try:
                    with open(self.path, encoding="utf-8") as f:
                        data = json.load(f)
                except ValueError:
                    logger.warning("Couldn't decode file: %s", self.path)
                    data = {}
                except OSError:
                    data = {}
                self._data = data if isinstance(data, dict) else {}
                self._key = key
        return self._data


class _FlaskManifest(kiln.Manifest):
    """kiln's manifest.json, with URLs built like ``static_url_for`` builds them."""

    def __init__(self, path: str, ext: Kiln) -> None:
        super().__init__(path)
        self._ext = ext

    def file_url(self, file: str) -> str:
        return self._ext._join_host(url_for("static", filename=file))


class _State:
    def __init__(self, app: Flask, ext: Kiln) -> None:
        self.manifests: dict[str, _CacheManifest] = {}
        folder = app.static_folder
        self.kiln_manifest = (
            _FlaskManifest(os.path.join(folder, "manifest.json"), ext) if folder else None
        )


class Kiln:
    """The Flask extension (one instance can serve several apps)."""

    def __init__(self, app: Flask | None = None) -> None:
        self.app = app
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.config.setdefault("KILN_SRC", os.path.join(app.root_path, "assets"))
        app.config.setdefault("KILN_CONFIG", None)
        app.config.setdefault("KILN_HOST_URL", None)
        app.extensions["kiln"] = _State(app, self)

        app.add_template_global(self.static_url_for, "static_url_for")
        for name, helper in self._helpers().items():
            app.add_template_global(helper, name)

        original_max_age = app.get_send_file_max_age

        def get_send_file_max_age(filename: str | None) -> int | None:
            if filename and HASHED.search(filename):
                return IMMUTABLE_MAX_AGE
            return original_max_age(filename)

        app.get_send_file_max_age = get_send_file_max_age  # type: ignore[method-assign]
        app.after_request(_immutable)
        app.cli.add_command(_cli_group())

    # -- static_url_for --------------------------------------------------------------------

    @staticmethod
    def _state() -> _State:
        return current_app.extensions["kiln"]

    @staticmethod
    def _host_url() -> str | None:
        config = current_app.config
        host = config.get("KILN_HOST_URL")
        return host if host is not None else config.get("FLASK_STATIC_DIGEST_HOST_URL")

    def _join_host(self, path: str) -> str:
        host = self._host_url()
        if host is None:
            return path
        return "/".join([host.rstrip("/"), path.lstrip("/")])

    def _cache_manifest(self, endpoint: str) -> dict[str, str]:
        state = self._state()
        found = state.manifests.get(endpoint)
        if found is None:
            if endpoint == "static":
                scaffold: Flask | Blueprint | None = current_app
            elif endpoint.endswith(".static"):
                scaffold = current_app.blueprints.get(endpoint[: -len(".static")])
            else:
                scaffold = None
            if scaffold is None or not scaffold.has_static_folder:
                return {}
            folder = scaffold.static_folder
            assert folder is not None
            found = _CacheManifest(os.path.join(folder, "cache_manifest.json"))
            state.manifests[endpoint] = found
        return found.get()

    def static_url_for(self, endpoint: str, **values: Any) -> str:
        """``url_for`` with the fingerprinted name from ``cache_manifest.json`` and the host URL
        (``KILN_HOST_URL`` or ``FLASK_STATIC_DIGEST_HOST_URL``), as flask-static-digest's."""
        if endpoint[:1] == "." and has_request_context():
            blueprint = request.blueprint
            endpoint = f"{blueprint}{endpoint}" if blueprint is not None else endpoint[1:]
        manifest = self._cache_manifest(endpoint)
        filename = values.get("filename")
        values["filename"] = manifest.get(filename, filename)
        return self._join_host(url_for(endpoint, **values))

    # -- kiln's HTML helpers ---------------------------------------------------------------

    def manifest(self) -> kiln.Manifest:
        """kiln's manifest.json of the current app's static folder."""
        found = self._state().kiln_manifest
        if found is None:
            raise RuntimeError("kiln: the app has no static folder")
        return found

    def _render(self, helper: Callable[..., str], *args: Any, **kwargs: Any) -> str:
        try:
            return helper(self.manifest(), *args, **kwargs)
        except kiln.UnknownAsset as e:
            if current_app.debug or current_app.testing:
                raise
            logger.warning("%s", e)
            return ""

    def _helpers(self) -> dict[str, Callable[..., Any]]:
        return jinja_globals(self._render)


def _immutable(response: Response) -> Response:
    """Marks the app's and blueprints' fingerprinted static files immutable."""
    endpoint = request.endpoint or ""
    if (
        (endpoint == "static" or endpoint.endswith(".static"))
        and response.status_code in (200, 206, 304)
        and HASHED.search((request.view_args or {}).get("filename", ""))
    ):
        response.cache_control.public = True
        response.cache_control.max_age = IMMUTABLE_MAX_AGE
        response.cache_control.immutable = True
        response.cache_control.no_cache = None
    return response


def build_command(app: Flask, extra: tuple[str, ...] = ()) -> list[str]:
    """The ``kiln build`` command line for ``app``: ``KILN_SRC`` into its static folder."""
    if not app.static_folder:
        raise click.UsageError("the app has no static folder to build into")
    public_path = "/" + (app.static_url_path or "").strip("/")
    public_url = public_path.rstrip("/") + "/"
    host = app.config.get("KILN_HOST_URL")
    if host is None:
        host = app.config.get("FLASK_STATIC_DIGEST_HOST_URL")
    if host:
        public_url = host.rstrip("/") + public_url
    cmd = [
        kiln.find_bin(),
        "build",
        "--src",
        os.fspath(app.config["KILN_SRC"]),
        "--out",
        app.static_folder,
        "--public-url",
        public_url,
        # What this extension reads (cache_manifest.json, manifest.json, importmap.json),
        # whatever `[manifest] formats` a kiln.toml sets.
        "--manifest",
        "kiln,flask,importmap",
    ]
    if app.config.get("KILN_CONFIG"):
        cmd += ["--config", os.fspath(app.config["KILN_CONFIG"])]
    return cmd + list(extra)


def _cli_group() -> click.Group:
    from flask.cli import AppGroup

    group = AppGroup("kiln", help="kiln: build the app's static assets.")

    @group.command(
        "build",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def build(args: tuple[str, ...]) -> None:
        """Build KILN_SRC into the static folder (extra flags go to `kiln build`)."""
        cmd = build_command(current_app, args)
        sys.stdout.flush()
        sys.stderr.flush()
        code = subprocess.run(cmd, check=False).returncode
        if code:
            raise SystemExit(code)

    return group
