"""Reading kiln's `manifest.json` (schema 1) and `importmap.json`, reloaded when they change."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

SCHEMA = 1

# What Django's filepath_to_uri leaves unquoted, so kiln's URLs match `{% static %}`'s.
_URL_SAFE = "/~!*()'"


class UnknownAsset(LookupError):
    """A logical path (``css/app.css``) that kiln's manifest does not list."""

    def __init__(self, logical: str, manifest_path: os.PathLike[str] | str | None = None) -> None:
        self.logical = logical
        self.manifest_path = manifest_path
        where = f" {manifest_path}" if manifest_path is not None else ""
        super().__init__(
            f"{logical!r} is not in kiln's manifest{where}: is it in the source folder, "
            "and did the last build succeed?"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.logical, self.manifest_path))


class _JsonFile:
    """A JSON file parsed once per version on disk (mtime, size, inode)."""

    def __init__(
        self, path: Path, check: Callable[[Any, Path], None] | None = None, reload: bool = True
    ) -> None:
        self.path = path
        self._check = check
        self._reload = reload
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._value: Any = None

    def get(self) -> Any:
        if not self._reload and self._key is not None:
            return self._value
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT, f"{self.path.name} not found (has kiln built this folder?)", self.path
            ) from None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key != self._key:
            with self._lock:
                if key != self._key:
                    with open(self.path, encoding="utf-8") as f:
                        value = json.load(f)
                    if self._check is not None:
                        self._check(value, self.path)
                    self._value, self._key = value, key
        return self._value


def _check_manifest(data: Any, path: Path) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("assets"), dict):
        raise ValueError(f"{path}: not a kiln manifest (no 'assets' object)")
    if data.get("schema") != SCHEMA:
        raise ValueError(
            f"{path}: kiln manifest schema {data.get('schema')!r}, this package reads schema "
            f"{SCHEMA}: upgrade the kiln-assets package"
        )


class Manifest:
    """kiln's ``manifest.json``: every asset's fingerprinted file, integrity, imports, variants.

    The file is re-read when it changes on disk (a later build), checked with one ``stat`` per
    access; with ``reload=False`` it is read once. ``public_url`` overrides the manifest's own
    (Django passes ``STATIC_URL``).
    ``importmap.json`` is read from the same folder.
    """

    def __init__(
        self, path: os.PathLike[str] | str, public_url: str | None = None, reload: bool = True
    ) -> None:
        self.path = Path(path)
        if public_url and not public_url.endswith("/"):
            public_url += "/"
        self._public_url = public_url
        self._manifest = _JsonFile(self.path, _check_manifest, reload)
        self._importmap = _JsonFile(self.path.with_name("importmap.json"), reload=reload)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @property
    def data(self) -> dict[str, Any]:
        """The whole parsed manifest."""
        return self._manifest.get()

    @property
    def assets(self) -> dict[str, dict[str, Any]]:
        """Entries by logical path."""
        return self.data["assets"]

    @property
    def public_url(self) -> str:
        """The URL the output folder is served under (ends with ``/``)."""
        if self._public_url is not None:
            return self._public_url
        return self.data.get("public_url") or "/"

    def asset(self, logical: str) -> dict[str, Any]:
        """The entry of ``logical``; raises :class:`UnknownAsset` when there is none."""
        try:
            return self.assets[logical]
        except KeyError:
            raise UnknownAsset(logical, self.path) from None

    def file_url(self, file: str) -> str:
        """The URL of a file of the output folder (an entry's ``file``)."""
        return self.public_url + quote(file, safe=_URL_SAFE)

    def url(self, logical: str) -> str:
        """The fingerprinted URL of ``logical``."""
        return self.file_url(self.asset(logical)["file"])

    def importmap(self) -> dict[str, Any]:
        """The content of ``importmap.json`` beside the manifest, its URLs moved from the public
        URL of the build to the one :meth:`file_url` uses now (``public_url``, or a subclass's
        own, e.g. a Flask app mounted under a prefix), so they match the other tags' URLs."""
        try:
            data = self._importmap.get()
        except FileNotFoundError as e:
            raise FileNotFoundError(
                errno.ENOENT,
                'importmap.json not found beside manifest.json: add "importmap" to kiln\'s '
                "[manifest] formats (or --manifest)",
                e.filename,
            ) from None
        built = self.data.get("public_url") or "/"
        now = self.file_url("x")[:-1]
        if now == built or not isinstance(data, dict):
            return data
        return {key: _rebase(value, built, now) for key, value in data.items()}


def _rebase(value: Any, old: str, new: str) -> Any:
    """``value`` with every string (key or value) starting with ``old`` starting with ``new``."""
    if isinstance(value, str):
        return new + value[len(old) :] if value.startswith(old) else value
    if isinstance(value, dict):
        return {_rebase(k, old, new): _rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, old, new) for v in value]
    return value
