"""The ``KILN`` setting and the paths derived from it.

``KILN`` is an optional dict:

- ``SOURCE_DIR``: the staging folder ``collectstatic`` copies every found file into and kiln reads
  (default: ``.kiln-src`` beside ``STATIC_ROOT``). Must not overlap ``STATIC_ROOT``.
- ``CONFIG``: a ``kiln.toml`` whose settings apply (``[images]``, ``[css]``, ``targets``...);
  ``src``, ``out``, ``public_url`` and ``[manifest] formats`` are always set from Django's
  settings. Default: ``kiln.toml`` in the folder containing ``SOURCE_DIR``, if there is one (as
  ``kiln build`` run in that folder would use it).
- ``MANIFEST``: kiln's ``manifest.json`` for the template tags (default: in ``STATIC_ROOT``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEYS = ("SOURCE_DIR", "CONFIG", "MANIFEST")
# Written into the staging folder after every build: the files collectstatic staged (so files no
# finder reports any more are removed, and only those), and by its time, when kiln last ran.
STAGING_RECORD = ".kiln-staging.json"
MANIFEST = "manifest.json"


def kiln_settings() -> dict[str, Any]:
    value = getattr(settings, "KILN", None) or {}
    if not isinstance(value, dict):
        raise ImproperlyConfigured("The KILN setting must be a dict.")
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ImproperlyConfigured(
            f"Unknown key(s) in the KILN setting: {', '.join(unknown)} (known: {', '.join(KEYS)})."
        )
    return value


def _path(value: Any) -> Path | None:
    return Path(os.path.abspath(os.fspath(value))) if value else None


def static_root() -> Path | None:
    return _path(settings.STATIC_ROOT)


def source_dir() -> Path | None:
    configured = _path(kiln_settings().get("SOURCE_DIR"))
    if configured is not None:
        return configured
    root = static_root()
    return root.parent / ".kiln-src" if root is not None else None


def config_file(source: Path) -> Path | None:
    """The kiln.toml to build with: ``KILN["CONFIG"]``, else one beside the staging folder."""
    configured = _path(kiln_settings().get("CONFIG"))
    if configured is not None:
        return configured
    default = source.parent / "kiln.toml"
    return default if default.is_file() else None


def manifest_path() -> Path | None:
    configured = _path(kiln_settings().get("MANIFEST"))
    if configured is not None:
        return configured
    root = static_root()
    return root / MANIFEST if root is not None else None


def live_reload() -> bool:
    """Whether a running process re-reads kiln's manifests when a build replaces them: under
    ``DEBUG`` (``kiln watch``, or ``collectstatic`` beside ``runserver``) and with
    ``WHITENOISE_AUTOREFRESH``. Otherwise they are read once, as Django's
    ``ManifestStaticFilesStorage`` does: WhiteNoise without autorefresh serves only the files it
    found at startup, so URLs from a newer build would 404 until a restart."""
    return bool(getattr(settings, "WHITENOISE_AUTOREFRESH", settings.DEBUG) or settings.DEBUG)
