"""HTML for kiln's assets, from its manifest: framework-agnostic functions returning strings.

Every function takes a :class:`~kiln.Manifest` first and returns HTML as a plain ``str`` (the
Django and Flask integrations mark it safe). Attribute values are escaped; extra keyword
arguments become attributes: ``data_x="1"`` renders ``data-x="1"`` (a trailing ``_`` is dropped,
so ``class_="hero"`` renders ``class="hero"``), ``True`` a bare attribute, and ``None`` or
``False`` nothing, which also removes a default (``crossorigin=None``). A value with an
``__html__`` method (``markupsafe.Markup``, Django's ``SafeString``) is taken as already escaped,
except for ``"``, which would end the attribute (Django marks a template's string literals safe,
so ``alt='The "A" team'`` arrives as one).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import _thumbhash
from ._manifest import Manifest

__all__ = ["attributes", "css", "importmap", "js", "picture", "preload", "url"]

_NAME = re.compile(r"[A-Za-z_:][-A-Za-z0-9_:.]*\Z")
#: ``picture(loading=...)``'s default: ``"lazy"``, but none with ``fetchpriority="high"`` (the
#: page's main image, which lazy loading would delay).
LAZY_UNLESS_HIGH_PRIORITY: Any = object()
_MODERN_FORMATS = ("image/avif", "image/webp")


def _attr_name(name: str) -> str:
    converted = name[:-1] if name.endswith("_") and len(name) > 1 else name
    converted = converted.replace("_", "-")
    if not _NAME.match(converted):
        raise ValueError(f"not a valid HTML attribute name: {name!r}")
    return converted


def _value(value: Any) -> str:
    if hasattr(value, "__html__"):
        # Escaped HTML text may still hold a raw `"` (`&quot;` means the same in text).
        return str(value.__html__()).replace('"', "&quot;")
    return html.escape(str(value), quote=True)


def attributes(attrs: Mapping[str, Any]) -> str:
    """``attrs`` as HTML attributes, each preceded by a space (names used as given)."""
    parts = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        if not _NAME.match(name):
            raise ValueError(f"not a valid HTML attribute name: {name!r}")
        parts.append(f" {name}" if value is True else f' {name}="{_value(value)}"')
    return "".join(parts)


def _merge(defaults: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for name, value in extra.items():
        merged[_attr_name(name)] = value
    return merged


def _tag(name: str, attrs: Mapping[str, Any]) -> str:
    return f"<{name}{attributes(attrs)}>"


def _is_javascript(entry: Mapping[str, Any]) -> bool:
    return "javascript" in entry.get("content_type", "") or entry.get("file", "").endswith(".mjs")


def url(manifest: Manifest, logical: str, /) -> str:
    """The fingerprinted URL of ``logical``: the public URL followed by its file."""
    return manifest.url(logical)


def css(manifest: Manifest, logical: str, /, **attrs: Any) -> str:
    """``<link rel="stylesheet">`` for a stylesheet, with its integrity."""
    entry = manifest.asset(logical)
    defaults = {
        "rel": "stylesheet",
        "href": manifest.file_url(entry["file"]),
        "integrity": entry.get("integrity"),
        "crossorigin": "anonymous",
    }
    return _tag("link", _merge(defaults, attrs))


def _static_imports(manifest: Manifest, logical: str) -> list[str]:
    """Every module ``logical`` imports statically, transitively, depth first, each once."""
    seen = {logical}
    order: list[str] = []
    stack: list[Iterable[str]] = [iter(manifest.asset(logical).get("imports", ()))]
    while stack:
        dep = next(stack[-1], None)
        if dep is None:
            stack.pop()
            continue
        if dep in seen:
            continue
        seen.add(dep)
        entry = manifest.asset(dep)
        if not _is_javascript(entry):  # e.g. `import data from "./x.json" with {type: "json"}`
            continue
        order.append(dep)
        stack.append(iter(entry.get("imports", ())))
    return order


def js(manifest: Manifest, logical: str, /, **attrs: Any) -> str:
    """An ES module entry point: ``<link rel="modulepreload">`` for every module it imports
    statically (transitively, each once), then its ``<script type="module">``.

    Extra attributes go on the ``<script>``; a ``nonce`` also goes on the preloads.
    """
    entry = manifest.asset(logical)
    extra = _merge({}, attrs)
    links = []
    for dep in _static_imports(manifest, logical):
        dep_entry = manifest.asset(dep)
        link = {
            "rel": "modulepreload",
            "href": manifest.file_url(dep_entry["file"]),
            "integrity": dep_entry.get("integrity"),
            "crossorigin": extra.get("crossorigin", "anonymous"),
            "nonce": extra.get("nonce"),
        }
        links.append(_tag("link", link))
    script = {
        "type": "module",
        "src": manifest.file_url(entry["file"]),
        "integrity": entry.get("integrity"),
        "crossorigin": "anonymous",
    }
    script.update(extra)
    return "\n".join([*links, _tag("script", script) + "</script>"])


def _preload_as(content_type: str) -> tuple[str, str | None]:
    """The ``as`` of a preload and its ``crossorigin``, matching what css()/js()/<img> fetch."""
    if content_type.startswith("font/") or content_type.startswith("application/font"):
        return "font", "anonymous"
    if content_type == "text/css":
        return "style", "anonymous"
    if "javascript" in content_type:
        return "script", "anonymous"
    if content_type.startswith("image/"):
        return "image", None
    return "fetch", "anonymous"


def preload(manifest: Manifest, logical: str, /, **attrs: Any) -> str:
    """``<link rel="preload">`` with ``as`` and ``type`` from the asset's content type.

    Fonts are always fetched in CORS mode (``crossorigin="anonymous"``); stylesheets and scripts
    too, with their ``integrity``, to match what :func:`css` and :func:`js` request (a preload
    whose integrity differs from the tag that uses it is not used, and the file is fetched
    twice); images are not. For a module graph use :func:`js`, which preloads the modules with
    ``rel="modulepreload"``.
    """
    entry = manifest.asset(logical)
    content_type = entry.get("content_type", "")
    as_, crossorigin = _preload_as(content_type)
    defaults = {
        "rel": "preload",
        "href": manifest.file_url(entry["file"]),
        "as": as_,
        "type": content_type or None,
        "crossorigin": crossorigin,
        "integrity": entry.get("integrity") if as_ in ("style", "script") else None,
    }
    merged = _merge(defaults, attrs)
    if as_ == "font" and not merged.get("crossorigin"):
        merged["crossorigin"] = "anonymous"  # a font preload without it is never used
    return _tag("link", merged)


def _srcsets(manifest: Manifest, image: Mapping[str, Any]) -> dict[str, str]:
    """``srcset`` by content type: the image's variants, and the image itself at its width."""
    by_type: dict[str, dict[int, str]] = {}
    for variant in image.get("variants", ()):
        widths = by_type.setdefault(variant["content_type"], {})
        widths.setdefault(int(variant["width"]), variant["file"])
    own, width = image.get("content_type", ""), image.get("width")
    if width:
        by_type.setdefault(own, {})[int(width)] = image["file"]
    return {
        content_type: ", ".join(f"{manifest.file_url(f)} {w}w" for w, f in sorted(files.items()))
        for content_type, files in by_type.items()
    }


def picture(
    manifest: Manifest,
    logical: str,
    /,
    alt: str,
    sizes: str | None = None,
    loading: str | None = LAZY_UNLESS_HIGH_PRIORITY,
    decoding: str | None = "async",
    fetchpriority: str | None = None,
    placeholder: bool = False,
    **attrs: Any,
) -> str:
    """A ``<picture>``: a ``<source>`` per modern format kiln made (AVIF, then WebP) and the
    ``<img>`` in the image's own format, each with a ``srcset`` of every width.

    ``alt`` is required (``""`` for a decorative image). ``sizes`` defaults to
    ``(max-width: Wpx) 100vw, Wpx`` with the image's width. ``loading`` defaults to ``"lazy"``,
    or to none (eager) with ``fetchpriority="high"``. ``placeholder=True`` paints the
    image's ThumbHash as the ``<img>``'s background while it loads (an inline ``style``).
    Extra attributes go on the ``<img>``.
    """
    if not isinstance(alt, str):
        raise TypeError('picture() needs alt text: a string, "" for a decorative image')
    if loading is LAZY_UNLESS_HIGH_PRIORITY:
        loading = None if fetchpriority == "high" else "lazy"
    image = manifest.asset(logical)
    own = image.get("content_type", "")
    width, height = image.get("width"), image.get("height")
    srcsets = _srcsets(manifest, image)
    if sizes is None and width:
        sizes = f"(max-width: {width}px) 100vw, {width}px"
    sources = [
        _tag("source", {"type": t, "srcset": srcsets[t], "sizes": sizes})
        for t in _MODERN_FORMATS
        if t != own and t in srcsets
    ]
    own_srcset = srcsets.get(own)
    img: dict[str, Any] = {
        "src": manifest.file_url(image["file"]),
        "srcset": own_srcset,
        "sizes": sizes if own_srcset else None,
        "width": width,
        "height": height,
        "alt": alt,
        "loading": loading,
        "decoding": decoding,
        "fetchpriority": fetchpriority,
    }
    merged = _merge(img, attrs)
    if placeholder and image.get("placeholder"):
        background = _thumbhash.data_url(image["placeholder"])
        if background:
            style = f"background:url({background}) center/cover no-repeat"
            if merged.get("style"):
                style += ";" + str(merged["style"])
            merged["style"] = style
    return "<picture>" + "".join(sources) + _tag("img", merged) + "</picture>"


def importmap(manifest: Manifest, /, **attrs: Any) -> str:
    """``<script type="importmap">`` with the content of ``importmap.json`` (extra attributes,
    e.g. ``nonce``, go on the ``<script>``)."""
    text = json.dumps(manifest.importmap(), separators=(",", ":"), sort_keys=True)
    # Nothing in it may end the script element or open a comment inside it.
    text = text.replace("</", "<\\/").replace("<!--", "\\u003c!--")
    return _tag("script", _merge({"type": "importmap"}, attrs)) + text + "</script>"


#: The template helpers by the name templates call them, each taking the manifest first.
HELPERS: dict[str, Callable[..., str]] = {
    "kiln_url": url,
    "kiln_css": css,
    "kiln_js": js,
    "kiln_preload": preload,
    "kiln_picture": picture,
    "kiln_importmap": importmap,
}


def jinja_globals(render: Callable[..., str]) -> dict[str, Callable[..., Any]]:
    """:data:`HELPERS` as Jinja2 globals: each calls ``render(helper, *args, **kwargs)`` (which
    supplies the manifest and decides what an unknown asset does) and returns
    ``markupsafe.Markup``, except ``kiln_url``, a plain URL."""
    from markupsafe import Markup

    def bind(name: str, helper: Callable[..., str]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            html = render(helper, *args, **kwargs)
            return html if helper is url else Markup(html)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = helper.__doc__
        return call

    return {name: bind(name, helper) for name, helper in HELPERS.items()}
