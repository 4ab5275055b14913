"""System checks (tag ``staticfiles``):

- ``kiln.W001``: kiln's ``manifest.json`` is missing from ``STATIC_ROOT``: nothing was built, so
  the template tags have nothing to render;
- ``kiln.W002``: with ``KilnStorage``, a file staged by ``collectstatic`` is newer than kiln's
  last build (its build failed, or ran with ``--no-post-process``): ``STATIC_ROOT`` is stale;
- ``kiln.W003``: the ``staticfiles`` storage is Django's ``ManifestStaticFilesStorage`` (or
  WhiteNoise's ``CompressedManifestStaticFilesStorage``, or another subclass) while
  ``STATIC_ROOT`` holds kiln's output: ``collectstatic`` would fingerprint kiln's fingerprinted
  files a second time. Use ``kiln.django.storage.KilnStorage``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import conf

STAGING_SKIP = {conf.STAGING_RECORD}


def _storage() -> tuple[type | None, dict[str, Any]]:
    storages = getattr(settings, "STORAGES", None) or {}
    entry = storages.get("staticfiles") or {}
    backend = entry.get("BACKEND")
    if not backend:
        return None, {}
    try:
        cls = import_string(backend)
    except ImportError:
        return None, {}
    return (cls if isinstance(cls, type) else None), entry.get("OPTIONS") or {}


def _is_kiln_manifest(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and "schema" in data
        and str(data.get("generator", "")).startswith("kiln")
    )


def _newest_mtime(folder: Path) -> tuple[float, str] | None:
    newest: tuple[float, str] | None = None
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in filenames:
            if dirpath == os.fspath(folder) and name in STAGING_SKIP:
                continue
            path = os.path.join(dirpath, name)
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            if newest is None or mtime > newest[0]:
                newest = (mtime, os.path.relpath(path, folder))
    return newest


def check_kiln(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from .storage import KilnStorage

    messages: list[checks.CheckMessage] = []
    try:
        manifest = conf.manifest_path()
        source = conf.source_dir()
    except ImproperlyConfigured as e:
        return [checks.Error(str(e), id="kiln.E002")]
    storage_cls, options = _storage()
    uses_kiln = storage_cls is not None and issubclass(storage_cls, KilnStorage)

    if manifest is None or not manifest.is_file():
        messages.append(
            checks.Warning(
                f"kiln's manifest.json is missing ({manifest or 'STATIC_ROOT is not set'}).",
                hint=(
                    "Run `python manage.py collectstatic` with "
                    "STORAGES['staticfiles'] = kiln.django.storage.KilnStorage (or `kiln build` "
                    "into STATIC_ROOT); kiln's template tags read this file."
                ),
                id="kiln.W001",
            )
        )
    elif uses_kiln:
        staging = Path(options["location"]) if options.get("location") else source
        if staging is not None and staging.is_dir():
            record = staging / conf.STAGING_RECORD
            built = record if record.is_file() else manifest
            newest = _newest_mtime(staging)
            if newest is not None and newest[0] > built.stat().st_mtime:
                messages.append(
                    checks.Warning(
                        f"kiln's build in {manifest.parent} is older than {newest[1]} in the "
                        f"staging folder {staging}.",
                        hint=(
                            "The last collectstatic did not finish its kiln build (it failed, "
                            "or ran with --no-post-process): run `python manage.py "
                            "collectstatic` again."
                        ),
                        id="kiln.W002",
                    )
                )

    root = conf.static_root()
    if (
        storage_cls is not None
        and issubclass(storage_cls, ManifestFilesMixin)
        and not uses_kiln
        and root is not None
        and _is_kiln_manifest(root / conf.MANIFEST)
    ):
        # A warning, not an error: `kiln build` + ManifestStaticFilesStorage without collectstatic
        # (docs/django.md, section 2) is a working set-up; running collectstatic over it is not.
        messages.append(
            checks.Warning(
                f"STATIC_ROOT ({root}) holds kiln's output, but the staticfiles storage "
                f"{storage_cls.__module__}.{storage_cls.__qualname__} fingerprints files itself: "
                "collectstatic would hash kiln's fingerprinted files a second time.",
                hint=(
                    "Set STORAGES['staticfiles']['BACKEND'] to "
                    "'kiln.django.storage.KilnStorage': it reads kiln's staticfiles.json, and "
                    "its collectstatic runs kiln."
                ),
                id="kiln.W003",
            )
        )
    return messages
