"""Helpers for the tests: parsing HTML, SRI, and reading image sizes from file headers."""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from html.parser import HTMLParser

HASHED = re.compile(r"\.[0-9a-f]{12}\.[^/]+$")


class Element:
    def __init__(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tag = tag
        self.attrs = dict(attrs)
        self.attr_names = [name for name, _ in attrs]
        self.text = ""

    def __getitem__(self, name: str) -> str | None:
        return self.attrs[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs}>"


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, attrs)
        self.elements.append(element)
        if tag in ("script", "picture", "style"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1].tag == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].text += data


def parse(html: str) -> list[Element]:
    """Every element of ``html``, in document order (attribute values unescaped)."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.elements


def find(elements: list[Element], tag: str, **attrs: str) -> list[Element]:
    return [e for e in elements if e.tag == tag and all(e.get(k) == v for k, v in attrs.items())]


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def srcset(value: str) -> list[tuple[str, int]]:
    """``srcset``'s candidates as (URL, width)."""
    items = []
    for candidate in value.split(","):
        url, descriptor = candidate.split()
        assert descriptor.endswith("w"), descriptor
        items.append((url, int(descriptor[:-1])))
    return items


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from a JPEG's start-of-frame marker."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError(f"bad JPEG marker at {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise ValueError("no SOF marker")


def webp_size(data: bytes) -> tuple[int, int]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", "not a WebP"
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    raise ValueError(f"unknown WebP chunk {chunk!r}")


def avif_size(data: bytes) -> tuple[int, int]:
    """From the first ``ispe`` (image spatial extents) property of an AVIF."""
    i = data.find(b"ispe")
    if i < 0 or data[4:8] != b"ftyp":
        raise ValueError("not an AVIF")
    return struct.unpack(">II", data[i + 8 : i + 16])


def image_size(data: bytes) -> tuple[int, int]:
    if data[:2] == b"\xff\xd8":
        return jpeg_size(data)
    if data[:4] == b"RIFF":
        return webp_size(data)
    if data[4:8] == b"ftyp":
        return avif_size(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24])
    raise ValueError("unknown image format")
