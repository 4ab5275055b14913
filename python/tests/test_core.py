"""The framework-agnostic helpers on the example site built by the kiln executable."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest
from markupsafe import Markup

import kiln
from kiln import _thumbhash
from tests.conftest import Site
from tests.htmlcheck import image_size, jpeg_size, parse, srcset, sri


@pytest.fixture(scope="module")
def manifest(site: Site) -> kiln.Manifest:
    return kiln.Manifest(site.manifest_path)


def served(site: Site, url: str) -> Path:
    """The file of the output folder a /static/ URL names."""
    assert url.startswith("/static/"), url
    path = site.out / url[len("/static/") :]
    assert path.is_file(), f"{url} is not in the output"
    return path


def test_url(site: Site, manifest: kiln.Manifest) -> None:
    entry = manifest.asset("css/app.css")
    assert kiln.url(manifest, "css/app.css") == "/static/" + entry["file"]
    assert served(site, kiln.url(manifest, "css/app.css")).read_bytes()
    assert manifest.public_url == "/static/"
    other = kiln.Manifest(site.manifest_path, public_url="https://cdn.example.com/s")
    assert kiln.url(other, "css/app.css") == "https://cdn.example.com/s/" + entry["file"]


def test_css(site: Site, manifest: kiln.Manifest) -> None:
    html = kiln.css(manifest, "css/app.css")
    [link] = parse(html)
    assert link.tag == "link"
    assert link.attr_names == ["rel", "href", "integrity", "crossorigin"]
    assert link["rel"] == "stylesheet"
    assert link["crossorigin"] == "anonymous"
    assert link["integrity"] == sri(served(site, link["href"]).read_bytes())


def test_js_preloads_static_imports(site: Site, manifest: kiln.Manifest) -> None:
    html = kiln.js(manifest, "js/main.js")
    elements = parse(html)
    assert [e.tag for e in elements] == ["link", "script"]
    preload, script = elements
    assert preload["rel"] == "modulepreload"
    assert preload["href"] == kiln.url(manifest, "js/lib/greet.js")
    assert script["type"] == "module"
    assert script["src"] == kiln.url(manifest, "js/main.js")
    assert html.endswith("></script>")
    for element, attr in ((preload, "href"), (script, "src")):
        assert element["crossorigin"] == "anonymous"
        assert element["integrity"] == sri(served(site, element[attr]).read_bytes())
    # The dynamic import is not preloaded.
    assert kiln.url(manifest, "js/lazy.js") not in html


def test_js_extra_attributes_and_nonce(manifest: kiln.Manifest) -> None:
    preload, script = parse(kiln.js(manifest, "js/main.js", nonce="r4nd", data_page="home"))
    assert script["nonce"] == preload["nonce"] == "r4nd"
    assert script["data-page"] == "home"
    assert "data-page" not in preload.attrs


def write_manifest(folder: Path, assets: dict, **extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.json"
    data = {"schema": 1, "generator": "kiln test", "public_url": "/s/", "assets": assets}
    data.update(extra)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def module(name: str, *imports: str) -> dict:
    entry = {"file": name.replace(".js", ".0123456789ab.js"), "integrity": "sha384-x"}
    entry["content_type"] = "text/javascript"
    if imports:
        entry["imports"] = list(imports)
    return entry


def test_js_transitive_deduplicated_and_cyclic(tmp_path: Path) -> None:
    assets = {
        "main.js": module("main.js", "a.js", "b.js"),
        "a.js": module("a.js", "c.js", "main.js"),
        "b.js": module("b.js", "c.js", "data.json"),
        "c.js": module("c.js", "a.js"),
        "data.json": {"file": "data.0123456789ab.json", "content_type": "application/json"},
    }
    manifest = kiln.Manifest(write_manifest(tmp_path, assets))
    elements = parse(kiln.js(manifest, "main.js"))
    hrefs = [e["href"] for e in elements if e.tag == "link"]
    assert hrefs == ["/s/a.0123456789ab.js", "/s/c.0123456789ab.js", "/s/b.0123456789ab.js"]
    assert elements[-1]["src"] == "/s/main.0123456789ab.js"


def test_preload(site: Site, manifest: kiln.Manifest) -> None:
    cases = {
        "fonts/example.woff2": ("font", "font/woff2", "anonymous"),
        "css/app.css": ("style", "text/css", "anonymous"),
        "js/main.js": ("script", "text/javascript", "anonymous"),
        "img/rocket.jpg": ("image", "image/jpeg", None),
    }
    for logical, (as_, type_, crossorigin) in cases.items():
        [link] = parse(kiln.preload(manifest, logical))
        assert link["rel"] == "preload"
        assert link["href"] == kiln.url(manifest, logical)
        served(site, link["href"])
        assert (link["as"], link["type"], link.get("crossorigin")) == (as_, type_, crossorigin)
    # A font is always fetched in CORS mode, so its preload always says so.
    [link] = parse(kiln.preload(manifest, "fonts/example.woff2", crossorigin=None))
    assert link["crossorigin"] == "anonymous"


def test_preload_carries_the_integrity_of_the_tag_that_uses_it(manifest: kiln.Manifest) -> None:
    # A preload whose integrity differs from the <link>/<script> using it is not used.
    for logical, tag in (("css/app.css", kiln.css), ("js/main.js", kiln.js)):
        [preload] = parse(kiln.preload(manifest, logical))
        user = parse(tag(manifest, logical))[-1]
        assert preload["integrity"] == user["integrity"] == manifest.asset(logical)["integrity"]
    for logical in ("fonts/example.woff2", "img/rocket.jpg"):  # @font-face and <img>: none
        [preload] = parse(kiln.preload(manifest, logical))
        assert "integrity" not in preload.attrs, logical


@pytest.fixture(scope="module")
def picture(manifest: kiln.Manifest) -> list:
    return parse(kiln.picture(manifest, "img/rocket.jpg", alt="A rocket on its launch pad"))


def test_picture_structure(site: Site, manifest: kiln.Manifest, picture: list) -> None:
    assert [e.tag for e in picture] == ["picture", "source", "source", "img"]
    sources, img = picture[1:3], picture[3]
    assert [s["type"] for s in sources] == ["image/avif", "image/webp"]
    jpeg = served(site, img["src"]).read_bytes()
    assert img["src"] == kiln.url(manifest, "img/rocket.jpg")
    assert (int(img["width"]), int(img["height"])) == jpeg_size(jpeg) == (640, 427)
    assert img["alt"] == "A rocket on its launch pad"
    assert img["loading"] == "lazy"
    assert img["decoding"] == "async"
    assert "fetchpriority" not in img.attrs
    assert "style" not in img.attrs
    sizes = "(max-width: 640px) 100vw, 640px"
    assert img["sizes"] == sizes
    assert all(s["sizes"] == sizes for s in sources)


def test_picture_srcsets_exist_at_their_widths(site: Site, picture: list) -> None:
    img = picture[-1]
    expected_type = {"source": None, "img": "image/jpeg"}
    for element in picture[1:]:
        candidates = srcset(element["srcset"])
        widths = [w for _, w in candidates]
        assert widths == sorted(set(widths)), "each width once, smallest first"
        for url, width in candidates:
            data = served(site, url).read_bytes()
            real_width, _ = image_size(data)
            assert real_width == width, url
            suffix = {"image/avif": ".avif", "image/webp": ".webp"}.get(
                element.get("type") or expected_type[element.tag], ".jpg"
            )
            assert url.endswith(suffix), url
    assert (img["src"], 640) in srcset(img["srcset"])
    assert [w for _, w in srcset(img["srcset"])] == [320, 640]


def test_picture_sources_offer_the_same_widths_as_img(picture: list) -> None:
    img_widths = [w for _, w in srcset(picture[-1]["srcset"])]
    for source in picture[1:-1]:
        assert [w for _, w in srcset(source["srcset"])] == img_widths, source["type"]


def test_picture_options(manifest: kiln.Manifest) -> None:
    html = kiln.picture(
        manifest,
        "img/rocket.jpg",
        alt="",
        sizes="50vw",
        loading=None,
        decoding=False,
        fetchpriority="high",
        class_="hero",
        data_role='x" onerror="alert(1)',
    )
    img = parse(html)[-1]
    assert img["alt"] == ""
    assert img["sizes"] == "50vw"
    assert "loading" not in img.attrs and "decoding" not in img.attrs
    assert img["fetchpriority"] == "high"
    assert img["class"] == "hero"
    assert img["data-role"] == 'x" onerror="alert(1)'
    assert "onerror" not in img.attrs
    assert all(s["sizes"] == "50vw" for s in parse(html) if s.tag == "source")


def test_high_priority_picture_is_not_lazy(manifest: kiln.Manifest) -> None:
    img = parse(kiln.picture(manifest, "img/rocket.jpg", alt="", fetchpriority="high"))[-1]
    assert img["fetchpriority"] == "high" and "loading" not in img.attrs
    img = parse(
        kiln.picture(manifest, "img/rocket.jpg", alt="", fetchpriority="high", loading="lazy")
    )[-1]
    assert img["loading"] == "lazy"
    img = parse(kiln.picture(manifest, "img/rocket.jpg", alt="", fetchpriority="low"))[-1]
    assert img["loading"] == "lazy"


def test_picture_alt_is_required(manifest: kiln.Manifest) -> None:
    with pytest.raises(TypeError):
        kiln.picture(manifest, "img/rocket.jpg")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        kiln.picture(manifest, "img/rocket.jpg", alt=None)  # type: ignore[arg-type]


def png_size(data_url: str) -> tuple[int, int]:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return image_size(base64.b64decode(data_url[len(prefix) :]))


def test_picture_placeholder(manifest: kiln.Manifest) -> None:
    entry = manifest.asset("img/rocket.jpg")
    assert entry.get("placeholder"), "kiln writes a ThumbHash by default"
    img = parse(kiln.picture(manifest, "img/rocket.jpg", alt="", placeholder=True, style="x:y"))[-1]
    style = img["style"]
    assert style.startswith("background:url(data:image/png;base64,")
    assert style.endswith(") center/cover no-repeat;x:y")
    w, h = png_size(style[len("background:url(") : style.index(")")])
    assert w == 32 and abs(w / h - 640 / 427) < 0.15, (w, h)


def test_thumbhash_decoder_matches_its_average_colour(manifest: kiln.Manifest) -> None:
    hash_ = _thumbhash._decode_b64(manifest.asset("img/rocket.jpg")["placeholder"])
    w, h, rgba = _thumbhash.to_rgba(hash_)
    assert len(rgba) == w * h * 4
    header = hash_[0] | hash_[1] << 8 | hash_[2] << 16
    lum, p, q = (
        (header & 63) / 63,
        ((header >> 6) & 63) / 31.5 - 1,
        ((header >> 12) & 63) / 31.5 - 1,
    )
    b = lum - 2 / 3 * p
    r = (3 * lum - b + q) / 2
    expected = [255 * min(1, max(0, c)) for c in (r, r - q, b)]
    for channel in range(3):
        mean = sum(rgba[channel::4]) / (w * h)
        assert abs(mean - expected[channel]) < 12, (channel, mean, expected)
    assert _thumbhash.data_url("not base64!") is None
    assert _thumbhash.data_url("AAAA") is None


def test_importmap(site: Site, manifest: kiln.Manifest) -> None:
    html = kiln.importmap(manifest, nonce="n")
    [script] = parse(html)
    assert script["type"] == "importmap" and script["nonce"] == "n"
    expected = json.loads((site.out / "importmap.json").read_text())
    assert json.loads(script.text) == expected
    for url in expected["imports"].values():
        served(site, url)


def test_importmap_cannot_end_the_script(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {})
    hostile = {"imports": {"/s/x.js": "/s/</script><script>alert(1)</script><!--.js"}}
    (tmp_path / "importmap.json").write_text(json.dumps(hostile))
    html = kiln.importmap(kiln.Manifest(path))
    assert html.count("</script>") == 1 and html.endswith("</script>")
    assert "<!--" not in html
    [script] = parse(html)
    assert json.loads(script.text) == hostile


def test_importmap_follows_the_public_url_in_use(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {})
    imports = {"/s/a.js": "/s/a.0123456789ab.js", "lib": "/s/lib.0123456789ab.js"}
    (tmp_path / "importmap.json").write_text(json.dumps({"imports": imports}))
    assert json.loads(parse(kiln.importmap(kiln.Manifest(path)))[0].text)["imports"] == imports
    moved = kiln.Manifest(path, public_url="/app/s/")
    assert json.loads(parse(kiln.importmap(moved))[0].text)["imports"] == {
        "/app/s/a.js": "/app/s/a.0123456789ab.js",
        "lib": "/app/s/lib.0123456789ab.js",
    }


def test_missing_importmap_says_how_to_get_one(tmp_path: Path) -> None:
    manifest = kiln.Manifest(write_manifest(tmp_path, {}))
    with pytest.raises(FileNotFoundError, match="importmap"):
        kiln.importmap(manifest)


def test_attribute_escaping(manifest: kiln.Manifest) -> None:
    html = kiln.css(
        manifest,
        "css/app.css",
        data_x='"><script>alert(1)</script>',
        title="Tom & Jerry's",
        disabled=True,
        hidden=False,
        media=None,
        aria_label=Markup("already &amp; escaped"),
        data_safe=Markup('a "quoted" <b>word</b>'),
    )
    assert "<script>" not in html
    [link] = parse(html)
    # Escaped HTML text may hold a raw quote: it must not end the attribute.
    assert link["data-safe"] == 'a "quoted" <b>word</b>'
    assert set(link.attrs) == {
        "rel", "href", "integrity", "crossorigin", "data-x", "title", "disabled", "aria-label",
        "data-safe",
    }  # fmt: skip
    assert link["data-x"] == '"><script>alert(1)</script>'
    assert link["title"] == "Tom & Jerry's"
    assert link["disabled"] is None and "disabled" in link.attrs
    assert "hidden" not in link.attrs and "media" not in link.attrs
    assert link["aria-label"] == "already & escaped"
    [link] = parse(kiln.css(manifest, "css/app.css", crossorigin=None))
    assert "crossorigin" not in link.attrs
    with pytest.raises(ValueError, match="attribute name"):
        kiln.css(manifest, "css/app.css", **{"x onload": "1"})


def test_unknown_asset(manifest: kiln.Manifest) -> None:
    for helper in (kiln.url, kiln.css, kiln.js, kiln.preload):
        with pytest.raises(kiln.UnknownAsset, match=r"css/nope\.css") as info:
            helper(manifest, "css/nope.css")
        assert isinstance(info.value, LookupError)
        assert info.value.logical == "css/nope.css"
    with pytest.raises(kiln.UnknownAsset):
        kiln.picture(manifest, "img/nope.jpg", alt="")


def test_manifest_reloads_when_it_changes(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"a.css": {"file": "a.111111111111.css"}})
    manifest = kiln.Manifest(path)
    assert manifest.url("a.css") == "/s/a.111111111111.css"
    write_manifest(tmp_path, {"a.css": {"file": "a.222222222222.css"}})
    later = time.time() + 5
    os.utime(path, (later, later))
    assert manifest.url("a.css") == "/s/a.222222222222.css"


def test_manifest_schema_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="kiln"):
        _ = kiln.Manifest(tmp_path / "manifest.json").assets
    path = write_manifest(tmp_path, {}, schema=2)
    with pytest.raises(ValueError, match="schema 2"):
        _ = kiln.Manifest(path).assets


def test_urls_are_quoted(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"a b.css": {"file": "a b,c.111111111111.css"}})
    assert kiln.url(kiln.Manifest(path), "a b.css") == "/s/a%20b%2Cc.111111111111.css"


def test_picture_of_an_image_without_variants(site: Site, manifest: kiln.Manifest) -> None:
    entry = manifest.asset("img/logo.svg")
    elements = parse(kiln.picture(manifest, "img/logo.svg", alt="kiln"))
    assert [e.tag for e in elements] == ["picture", "img"]
    img = elements[1]
    assert img["src"] == kiln.url(manifest, "img/logo.svg")
    served(site, img["src"])
    if entry.get("width"):
        assert img["width"] == str(entry["width"])
        assert img["srcset"].endswith(f" {entry['width']}w")
    else:
        assert "srcset" not in img.attrs and "sizes" not in img.attrs
