"""The helpers behind the template tags and Jinja2 globals: kiln's manifest from
``STATIC_ROOT`` (or ``KILN["MANIFEST"]``) under ``STATIC_URL``, and what an unknown asset does:
raise :class:`kiln.UnknownAsset` under ``DEBUG``, otherwise log a warning and render nothing."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

import kiln

from . import conf

logger = logging.getLogger("kiln")

_manifests: dict[tuple[str, str], kiln.Manifest] = {}
_lock = threading.Lock()


def manifest() -> kiln.Manifest:
    path = conf.manifest_path()
    if path is None:
        raise ImproperlyConfigured(
            "kiln's template tags read manifest.json from STATIC_ROOT: set STATIC_ROOT "
            "(or KILN['MANIFEST'])."
        )
    static_url = settings.STATIC_URL
    key = (str(path), static_url)
    found = _manifests.get(key)
    if found is None:
        with _lock:
            found = _manifests.setdefault(
                key, kiln.Manifest(path, public_url=static_url, reload=conf.live_reload())
            )
    return found


def forget() -> None:
    """Drops the manifests read so far: this process just built (``collectstatic``)."""
    with _lock:
        _manifests.clear()


def _render(helper: Callable[..., str], *args: Any, **kwargs: Any) -> str:
    try:
        return helper(manifest(), *args, **kwargs)
    except kiln.UnknownAsset as e:
        if settings.DEBUG:
            raise
        logger.warning("%s", e)
        return ""


def url(logical: str) -> str:
    return _render(kiln.url, logical)


def css(logical: str, **attrs: Any) -> str:
    return _render(kiln.css, logical, **attrs)


def js(logical: str, **attrs: Any) -> str:
    return _render(kiln.js, logical, **attrs)


def preload(logical: str, **attrs: Any) -> str:
    return _render(kiln.preload, logical, **attrs)


def picture(logical: str, alt: str, **kwargs: Any) -> str:
    return _render(kiln.picture, logical, alt, **kwargs)


def importmap(**attrs: Any) -> str:
    return _render(kiln.importmap, **attrs)
