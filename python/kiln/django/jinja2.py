"""kiln's helpers for Django's Jinja2 template backend.

.. code-block:: python

    TEMPLATES = [
        {
            "BACKEND": "django.template.backends.jinja2.Jinja2",
            "DIRS": [BASE_DIR / "jinja2"],
            "OPTIONS": {"environment": "kiln.django.jinja2.environment"},
        },
    ]

.. code-block:: jinja

    {{ kiln_css("css/app.css") }}
    {{ kiln_picture("img/hero.jpg", alt="The team") }}

Your own environment function can call :func:`install` instead. The globals are ``kiln_url``,
``kiln_css``, ``kiln_js``, ``kiln_preload``, ``kiln_picture`` and ``kiln_importmap`` (returning
``markupsafe.Markup``), and Django's ``static`` unless the environment already has one.
"""

from __future__ import annotations

from typing import Any

from django.templatetags.static import static
from jinja2 import Environment
from markupsafe import Markup

from . import _runtime


def kiln_url(logical: str) -> str:
    return _runtime.url(logical)


def kiln_css(logical: str, **attrs: Any) -> Markup:
    return Markup(_runtime.css(logical, **attrs))


def kiln_js(logical: str, **attrs: Any) -> Markup:
    return Markup(_runtime.js(logical, **attrs))


def kiln_preload(logical: str, **attrs: Any) -> Markup:
    return Markup(_runtime.preload(logical, **attrs))


def kiln_picture(logical: str, alt: str, **kwargs: Any) -> Markup:
    """``<picture>``: the same keywords as :func:`kiln.picture` (``sizes``, ``loading``,
    ``decoding``, ``fetchpriority``, ``placeholder``, extra attributes)."""
    return Markup(_runtime.picture(logical, alt, **kwargs))


def kiln_importmap(**attrs: Any) -> Markup:
    return Markup(_runtime.importmap(**attrs))


GLOBALS = {
    "kiln_url": kiln_url,
    "kiln_css": kiln_css,
    "kiln_js": kiln_js,
    "kiln_preload": kiln_preload,
    "kiln_picture": kiln_picture,
    "kiln_importmap": kiln_importmap,
}


def install(env: Environment) -> Environment:
    """Adds kiln's helpers (and ``static``) to an existing environment's globals."""
    env.globals.update(GLOBALS)
    env.globals.setdefault("static", static)
    return env


def environment(**options: Any) -> Environment:
    """A Jinja2 environment with kiln's helpers (``TEMPLATES``' ``OPTIONS["environment"]``)."""
    return install(Environment(**options))
