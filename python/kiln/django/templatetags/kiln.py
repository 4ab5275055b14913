"""``{% load kiln %}``: HTML for kiln's assets, from its manifest in ``STATIC_ROOT``.

.. code-block:: django

    {% load kiln %}
    {% kiln_importmap %}
    {% kiln_css "css/app.css" %}
    {% kiln_preload "fonts/body.woff2" %}
    {% kiln_js "js/main.js" %}
    {% kiln_picture "img/hero.jpg" alt="The team" sizes="100vw" fetchpriority="high" %}
    <a href="{% kiln_url 'docs/guide.pdf' %}">

Extra keyword arguments become attributes (``data_x="1"`` renders ``data-x="1"``). An asset the
manifest does not list raises :class:`kiln.UnknownAsset` with ``DEBUG = True``; otherwise it is
logged (logger ``kiln``) and renders nothing.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from .. import _runtime

register = template.Library()


@register.simple_tag
def kiln_url(logical: str) -> str:
    """The fingerprinted URL of an asset."""
    return _runtime.url(logical)


@register.simple_tag
def kiln_css(logical: str, **attrs: Any) -> SafeString:
    """``<link rel="stylesheet">`` with integrity."""
    return mark_safe(_runtime.css(logical, **attrs))


@register.simple_tag
def kiln_js(logical: str, **attrs: Any) -> SafeString:
    """``<link rel="modulepreload">`` for each static import, then ``<script type="module">``."""
    return mark_safe(_runtime.js(logical, **attrs))


@register.simple_tag
def kiln_preload(logical: str, **attrs: Any) -> SafeString:
    """``<link rel="preload">`` with ``as`` and ``type`` from the asset's content type."""
    return mark_safe(_runtime.preload(logical, **attrs))


@register.simple_tag
def kiln_picture(logical: str, alt: str, **kwargs: Any) -> SafeString:
    """``<picture>`` with AVIF/WebP ``<source>``s and a responsive ``<img>``; ``alt`` is
    required. The keywords of :func:`kiln.picture` (``sizes``, ``loading``, ``decoding``,
    ``fetchpriority``, ``placeholder``), then extra attributes."""
    return mark_safe(_runtime.picture(logical, alt, **kwargs))


@register.simple_tag
def kiln_importmap(**attrs: Any) -> SafeString:
    """``<script type="importmap">`` from kiln's ``importmap.json``."""
    return mark_safe(_runtime.importmap(**attrs))
