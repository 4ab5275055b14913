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

from .._html import jinja_globals
from . import _runtime

GLOBALS = jinja_globals(_runtime._render)


def install(env: Environment) -> Environment:
    """Adds kiln's helpers (and ``static``) to an existing environment's globals."""
    env.globals.update(GLOBALS)
    env.globals.setdefault("static", static)
    return env


def environment(**options: Any) -> Environment:
    """A Jinja2 environment with kiln's helpers (``TEMPLATES``' ``OPTIONS["environment"]``)."""
    return install(Environment(**options))
