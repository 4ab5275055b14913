"""``KilnStorage``: ``collectstatic`` gathers every app's static files and kiln builds them.

.. code-block:: python

    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "kiln.django.storage.KilnStorage"},
    }

``collectstatic`` copies what the finders see (every app's ``static/``, ``STATICFILES_DIRS``) into
a staging folder (``KILN["SOURCE_DIR"]``), then, as its post-processing step, runs
``kiln build`` from there into ``STATIC_ROOT``, which writes the fingerprinted files, their
``.br``/``.gz`` siblings and the manifests (``staticfiles.json``, ``manifest.json``,
``cache_manifest.json``, ``importmap.json``). ``{% static %}`` then reads ``staticfiles.json``
from ``STATIC_ROOT`` like ``ManifestStaticFilesStorage`` does (re-reading it when a later build
changes it), and WhiteNoise serves ``STATIC_ROOT`` with immutable headers for the fingerprinted
names it maps to.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage

from kiln import find_bin

from . import _runtime, conf

logger = logging.getLogger("kiln")

MANIFESTS = "kiln,django,flask,importmap"


class KilnBuildError(RuntimeError):
    """kiln exited with an error; ``stderr`` holds what it printed (every error with its file,
    line and a code frame). A failed build writes nothing: ``STATIC_ROOT`` is as it was."""

    def __init__(self, returncode: int, stderr: str, cmd: list[str] | None = None) -> None:
        self.returncode = returncode
        self.stderr = stderr
        self.cmd = cmd
        super().__init__(f"kiln build failed (exit status {returncode}):\n{stderr.rstrip()}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.returncode, self.stderr, self.cmd))


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


_LOCATION = re.compile(r"^(?P<path>[^\n]+?)(?P<rest>:\d+:\d+: )", re.MULTILINE)


def _original_paths(text: str, source: Path, paths: Mapping[str, Any]) -> str:
    """kiln's messages with each staged file's path replaced by the file collectstatic found."""
    prefix = os.fspath(source) + os.sep

    def replace(match: re.Match[str]) -> str:
        path = match["path"]
        if path.startswith(prefix):
            found = paths.get(path[len(prefix) :].replace("/", os.sep))
            if found is not None:
                storage, name = found
                try:
                    return storage.path(name) + match["rest"]
                except NotImplementedError:  # a storage without local paths
                    pass
        return match.group(0)

    return _LOCATION.sub(replace, text)


class KilnStorage(ManifestStaticFilesStorage):
    """Stages collected files for kiln and serves the names of its ``staticfiles.json``.

    ``location`` is the staging folder (``KILN["SOURCE_DIR"]``); the manifest is read from
    ``STATIC_ROOT`` (``manifest_storage``). ``manifest_strict`` (default True) makes
    ``{% static %}`` raise ``ValueError`` for a name kiln's manifest does not list; with it off,
    the unhashed name is returned.
    """

    def __init__(
        self,
        location: Any = None,
        base_url: str | None = None,
        *args: Any,
        manifest_storage: Any = None,
        **kwargs: Any,
    ) -> None:
        if location is None:
            source = conf.source_dir()
            location = os.fspath(source) if source is not None else None
        root = conf.static_root()
        if manifest_storage is None and root is not None:
            manifest_storage = FileSystemStorage(
                location=os.fspath(root), base_url=base_url or settings.STATIC_URL
            )
        self._manifest_key: tuple[int, int, int] | None = None
        super().__init__(location, base_url, *args, manifest_storage=manifest_storage, **kwargs)

    # -- reading kiln's staticfiles.json ---------------------------------------------------

    def _manifest_file(self) -> str | None:
        try:
            return self.manifest_storage.path(self.manifest_name)
        except (NotImplementedError, ImproperlyConfigured):  # remote, or no folder at all
            return None

    def _stat_key(self) -> tuple[int, int, int] | None:
        path = self._manifest_file()
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def read_manifest(self) -> str | None:
        self._manifest_key = self._stat_key()
        return super().read_manifest()

    def _refresh(self) -> None:
        """Re-reads staticfiles.json when a build replaced it (one stat per lookup), where
        :func:`conf.live_reload` allows."""
        if conf.live_reload() and self._stat_key() != self._manifest_key:
            self.hashed_files, self.manifest_hash = self.load_manifest()

    def stored_name(self, name: str) -> str:
        self._refresh()
        parsed = urlsplit(unquote(name))
        clean_name = parsed.path.strip()
        cache_name = self.hashed_files.get(self.hash_key(clean_name))
        if cache_name is None:
            if self.manifest_strict:
                raise ValueError(f"Missing staticfiles manifest entry for '{clean_name}'")
            # kiln's output has no copy under this name unless `unhashed = true`: a 404 shows
            # the mistake rather than a hash of the staged file that was never served.
            cache_name = clean_name
        unparsed = list(parsed)
        unparsed[2] = cache_name
        if "?#" in name and not unparsed[3]:  # the @font-face `font.eot?#iefix` hack
            unparsed[2] += "?"
        return urlunsplit(unparsed)

    # -- collectstatic's post-processing: kiln build ---------------------------------------

    def post_process(
        self, paths: Mapping[str, Any], dry_run: bool = False, **options: Any
    ) -> Iterator[tuple[str, str, bool]]:
        if dry_run:
            return
        source = Path(self.path(""))
        root = conf.static_root()
        if root is None:
            raise ImproperlyConfigured("KilnStorage needs STATIC_ROOT: kiln builds into it.")
        if _overlap(source, root):
            raise ImproperlyConfigured(
                f"KILN['SOURCE_DIR'] ({source}) and STATIC_ROOT ({root}) must not contain each "
                "other: collectstatic stages files in the first, kiln builds into the second."
            )
        staged = sorted(p.replace(os.sep, "/") for p in paths)
        self._remove_unstaged(source, staged)
        try:
            self.build(source, root)
        except KilnBuildError as e:
            # Name the app's or STATICFILES_DIRS' file rather than its staged copy.
            raise KilnBuildError(
                e.returncode, _original_paths(e.stderr, source, paths), e.cmd
            ) from None
        (source / conf.STAGING_RECORD).write_text(
            json.dumps({"version": 1, "files": staged}, indent=0), encoding="utf-8"
        )
        self.hashed_files, self.manifest_hash = self.load_manifest()
        _runtime.forget()
        for name, hashed_name in sorted(self.hashed_files.items()):
            yield name, hashed_name, True

    def build(self, source: Path, out: Path) -> subprocess.CompletedProcess[str]:
        """Runs ``kiln build`` over ``source`` into ``out`` under ``STATIC_URL``."""
        cmd = self.command("build", source, out)
        source.mkdir(parents=True, exist_ok=True)
        # Without a config, kiln keeps its cache (.kiln-cache) in its working folder.
        result = subprocess.run(
            cmd,
            cwd=source.parent,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            check=False,
        )
        if result.returncode != 0:
            raise KilnBuildError(result.returncode, result.stderr or result.stdout, cmd)
        for line in (result.stderr or "").splitlines():
            if line.strip():
                level = logging.WARNING if "warning" in line else logging.INFO
                logger.log(level, "%s", line)
        return result

    def command(self, verb: str, source: Path, out: Path) -> list[str]:
        """``kiln build`` (or ``kiln watch``) over ``source`` into ``out`` under ``STATIC_URL``,
        run with ``source``'s parent as the working folder."""
        cmd = [
            find_bin(),
            verb,
            "--src",
            os.fspath(source),
            "--out",
            os.fspath(out),
            "--public-url",
            settings.STATIC_URL,
            "--manifest",
            MANIFESTS,
        ]
        config = conf.config_file(source)
        if config is not None:
            cmd += ["--config", os.fspath(config)]
        return cmd

    def _remove_unstaged(self, source: Path, staged: list[str]) -> None:
        """Removes the files an earlier collectstatic staged that no finder reports now.

        Only files this storage recorded are removed, never anything else in the folder.
        """
        try:
            record = json.loads((source / conf.STAGING_RECORD).read_text(encoding="utf-8"))
            previous = record.get("files", [])
        except (OSError, ValueError, AttributeError):
            return
        current = set(staged)
        for name in previous:
            if name in current or not isinstance(name, str):
                continue
            parts = name.split("/")
            if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
                continue
            path = source.joinpath(*parts)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            parent = path.parent
            while parent != source:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
