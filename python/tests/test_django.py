"""kiln.django in a real project (tests/django_project): collectstatic through KilnStorage,
the template tags and Jinja2 globals, WhiteNoise serving the output, the system checks."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

django = pytest.importorskip("django")
pytest.importorskip("whitenoise")

import kiln  # noqa: E402
from tests.browser import (  # noqa: E402
    assert_page_is_whole,
    assert_sri_refused,
    browse,
    require_browser,
    serve,
    tamper,
)
from tests.conftest import Site  # noqa: E402
from tests.htmlcheck import HASHED, Element, image_size, parse, srcset, sri  # noqa: E402

HEX12 = re.compile(r"admin/css/base\.[0-9a-f]{12}\.css")


def kiln_checks() -> list:
    from django.core.checks import run_checks

    return [m for m in run_checks() if m.id and m.id.startswith("kiln.")]


@dataclass
class Collected:
    static_root: Path
    staging: Path
    checks_before: list
    checks_after: list
    seconds: float


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Path:
    """Django set up on tests.django_project, its STATIC_ROOT in a temporary folder."""
    var = tmp_path_factory.mktemp("django")
    os.environ["KILN_TEST_VAR"] = str(var)
    os.environ["KILN_TEST_ASSETS"] = str(site.src)
    os.environ["KILN_TEST_CONFIG"] = str(site.config)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.django_project.settings"
    django.setup()
    return var


@pytest.fixture(scope="module")
def collected(project: Path) -> Collected:
    from django.conf import settings
    from django.core.management import call_command

    before = kiln_checks()
    start = time.monotonic()
    call_command("collectstatic", interactive=False, verbosity=0)
    seconds = time.monotonic() - start
    return Collected(
        static_root=Path(settings.STATIC_ROOT),
        staging=Path(settings.KILN["SOURCE_DIR"]),
        checks_before=before,
        checks_after=kiln_checks(),
        seconds=seconds,
    )


def staticfiles_paths(collected: Collected) -> dict[str, str]:
    return json.loads((collected.static_root / "staticfiles.json").read_text())["paths"]


def test_checks_warn_until_collectstatic_builds(collected: Collected) -> None:
    assert [m.id for m in collected.checks_before] == ["kiln.W001"]
    assert collected.checks_after == []


def test_collectstatic_builds_every_found_file(collected: Collected) -> None:
    from django.contrib.staticfiles.finders import get_finders

    paths = staticfiles_paths(collected)
    found = {
        os.path.join(getattr(storage, "prefix", None) or "", path).replace(os.sep, "/")
        for finder in get_finders()
        for path, storage in finder.list(["CVS", ".*", "*~"])
    }
    assert "admin/css/base.css" in found and "css/app.css" in found
    assert found <= set(paths), sorted(found - set(paths))
    assert HEX12.fullmatch(paths["admin/css/base.css"]), paths["admin/css/base.css"]
    for name in paths.values():
        assert (collected.static_root / name).is_file(), name
    assert (collected.static_root / "manifest.json").is_file()
    assert (collected.static_root / "importmap.json").is_file()
    # The staging folder mirrors the finders; kiln's output is only in STATIC_ROOT.
    assert (collected.staging / "admin" / "css" / "base.css").is_file()
    assert not (collected.static_root / "admin" / "css" / "base.css").exists()


def test_static_tag_returns_fingerprinted_urls(collected: Collected) -> None:
    from django.template import Context, Template
    from django.templatetags.static import static

    hashed = staticfiles_paths(collected)["admin/css/base.css"]
    assert static("admin/css/base.css") == "/static/" + hashed
    rendered = Template("{% load static %}{% static 'admin/css/base.css' %}").render(Context())
    assert rendered == "/static/" + hashed
    assert static("img/rocket-320w.webp").startswith("/static/img/rocket-320w.")
    with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
        static("css/nope.css")


def body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def urls_in(elements: list[Element]) -> set[str]:
    urls = set()
    for element in elements:
        for attr in ("href", "src"):
            if element.get(attr):
                urls.add(element[attr])
        if element.get("srcset"):
            urls.update(url for url, _ in srcset(element["srcset"]))
        if element.tag == "script" and element.get("type") == "importmap":
            urls.update(json.loads(element.text)["imports"].values())
    return urls


def check_page(path: str) -> list[Element]:
    import brotli
    from django.test import Client

    client = Client()
    response = client.get(path)
    assert response.status_code == 200, response
    elements = parse(response.content.decode())
    kinds = {(e.tag, e.get("rel") or e.get("type")) for e in elements}
    for kind in [
        ("script", "importmap"),
        ("link", "stylesheet"),
        ("link", "preload"),
        ("link", "modulepreload"),
        ("script", "module"),
        ("source", "image/avif"),
        ("source", "image/webp"),
    ]:
        assert kind in kinds, kind
    [img] = [e for e in elements if e.tag == "img" and e.get("class") == "hero"]
    assert img["alt"] == "A rocket & its launch pad"
    assert img["style"].startswith("background:url(data:image/png;base64,")

    served: dict[str, bytes] = {}
    for url in sorted(u for u in urls_in(elements) if not u.startswith("data:")):
        assert url.startswith("/static/"), url
        response = client.get(url)
        assert response.status_code == 200, url
        served[url] = body(response)
        if HASHED.search(url):
            cache_control = response["Cache-Control"]
            assert "immutable" in cache_control, (url, cache_control)
            assert "max-age=" in cache_control, (url, cache_control)
    for element in elements:
        if element.get("integrity"):
            url = element.get("href") or element["src"]
            assert element["integrity"] == sri(served[url]), url
    # width/height are the served image's; every <source> offers the <img>'s widths, each the
    # real width of its file.
    assert (int(img["width"]), int(img["height"])) == image_size(served[img["src"]])
    picture = elements[elements.index(img) - 2 : elements.index(img) + 1]
    assert [e.tag for e in picture] == ["source", "source", "img"]
    widths = [w for _, w in srcset(img["srcset"])]
    for element in picture:
        candidates = srcset(element["srcset"])
        assert [w for _, w in candidates] == widths, element
        for url, width in candidates:
            assert image_size(served[url])[0] == width, url
    # kiln's Brotli sibling is served to browsers that accept it, with the same bytes inside.
    css = next(e for e in elements if e.get("rel") == "stylesheet" and e.get("integrity"))
    response = client.get(css["href"], HTTP_ACCEPT_ENCODING="br, gzip")
    assert response["Content-Encoding"] == "br"
    assert sri(brotli.decompress(body(response))) == css["integrity"]
    return elements


def test_page_with_template_tags(collected: Collected) -> None:
    check_page("/")


def test_page_with_jinja2_globals(collected: Collected) -> None:
    check_page("/jinja/")


def test_template_tags_render_like_the_core(collected: Collected) -> None:
    from django.template import Context, Template

    manifest = kiln.Manifest(collected.static_root / "manifest.json")
    template = Template(
        "{% load kiln %}{% kiln_url 'css/app.css' %}|{% kiln_css 'css/app.css' media='print' %}|"
        "{% kiln_js 'js/main.js' %}|{% kiln_preload 'fonts/example.woff2' %}|"
        "{% kiln_picture 'img/rocket.jpg' alt='' sizes='50vw' %}|{% kiln_importmap %}"
    )
    expected = [
        kiln.url(manifest, "css/app.css"),
        kiln.css(manifest, "css/app.css", media="print"),
        kiln.js(manifest, "js/main.js"),
        kiln.preload(manifest, "fonts/example.woff2"),
        kiln.picture(manifest, "img/rocket.jpg", alt="", sizes="50vw"),
        kiln.importmap(manifest),
    ]
    assert template.render(Context()).split("|") == expected


def test_template_literals_stay_in_their_attribute(collected: Collected) -> None:
    from django.template import Context, Template

    # Django marks a template's string literals safe: a quote in one must not end the attribute.
    html = Template(
        "{% load kiln %}{% kiln_picture 'img/rocket.jpg' alt='The \"best\" team' %}"
        "{% kiln_css 'css/app.css' title='say \"hi\"' %}"
    ).render(Context({}))
    img = next(e for e in parse(html) if e.tag == "img")
    link = next(e for e in parse(html) if e.tag == "link")
    assert img["alt"] == 'The "best" team' and link["title"] == 'say "hi"'
    assert set(img.attrs) <= {
        "src",
        "srcset",
        "sizes",
        "width",
        "height",
        "alt",
        "loading",
        "decoding",
    }


def test_picture_tag_requires_alt(collected: Collected) -> None:
    from django.template import Template, TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match="alt"):
        Template("{% load kiln %}{% kiln_picture 'img/rocket.jpg' %}")


UNKNOWN = [
    "{% kiln_url 'css/nope.css' %}",
    "{% kiln_css 'css/nope.css' %}",
    "{% kiln_js 'js/nope.js' %}",
    "{% kiln_preload 'fonts/nope.woff2' %}",
    "{% kiln_picture 'img/nope.jpg' alt='' %}",
]


def test_unknown_asset_raises_under_debug(collected: Collected) -> None:
    from django.template import Context, Template, engines
    from django.test import override_settings

    with override_settings(DEBUG=True):
        for source in UNKNOWN:
            with pytest.raises(kiln.UnknownAsset, match="nope"):
                Template("{% load kiln %}" + source).render(Context())
        with pytest.raises(kiln.UnknownAsset, match="nope"):
            engines["jinja2"].from_string("{{ kiln_css('css/nope.css') }}").render()


def test_unknown_asset_is_logged_otherwise(
    collected: Collected, caplog: pytest.LogCaptureFixture
) -> None:
    from django.template import Context, Template, engines
    from django.test import override_settings

    with override_settings(DEBUG=False), caplog.at_level(logging.WARNING, logger="kiln"):
        for source in UNKNOWN:
            caplog.clear()
            assert Template("{% load kiln %}[" + source + "]").render(Context()) == "[]"
            [record] = [r for r in caplog.records if r.name == "kiln"]
            assert record.levelno == logging.WARNING and "nope" in record.getMessage()
        rendered = engines["jinja2"].from_string("[{{ kiln_js('js/nope.js') }}]").render()
        assert rendered == "[]"


def test_stale_build_warns(collected: Collected) -> None:
    staged = collected.staging / "css" / "app.css"
    original = staged.stat()
    future = time.time() + 3600
    os.utime(staged, (future, future))
    try:
        assert [m.id for m in kiln_checks()] == ["kiln.W002"]
    finally:
        os.utime(staged, ns=(original.st_atime_ns, original.st_mtime_ns))
    assert kiln_checks() == []


@pytest.mark.parametrize(
    "backend",
    [
        "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
        "whitenoise.storage.CompressedManifestStaticFilesStorage",
    ],
)
def test_fingerprinting_storage_over_kiln_output_is_warned_about(
    collected: Collected, backend: str
) -> None:
    from django.conf import settings
    from django.test import override_settings

    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": backend}}
    with override_settings(STORAGES=storages):
        assert [m.id for m in kiln_checks()] == ["kiln.W003"]
    assert kiln_checks() == []


def test_storage_rereads_staticfiles_json_after_a_build_only_where_it_may(
    collected: Collected,
) -> None:
    from django.test import override_settings

    from kiln.django.storage import KilnStorage

    path = collected.static_root / "staticfiles.json"
    original, stat = path.read_bytes(), path.stat()
    hashed = staticfiles_paths(collected)["css/app.css"]
    data = json.loads(original)
    data["paths"]["css/app.css"] = "css/app.0123456789ab.css"
    # (stored_name: with DEBUG, Django's url() gives the source's name, which runserver serves.)
    # DEBUG (kiln watch, runserver) re-reads; production (WhiteNoise without autorefresh
    # serves only what it found at startup) keeps the URLs it started with.
    for debug, after in [(True, "css/app.0123456789ab.css"), (False, hashed)]:
        with override_settings(DEBUG=debug):
            storage = KilnStorage()
            assert storage.stored_name("css/app.css") == hashed
            try:
                path.write_text(json.dumps(data))
                later = time.time() + 5
                os.utime(path, (later, later))
                assert storage.stored_name("css/app.css") == after, debug
            finally:
                path.write_bytes(original)
                os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            assert storage.stored_name("css/app.css") == hashed
    storage.manifest_strict = False
    assert storage.url("css/nope.css") == "/static/css/nope.css"


def test_whitenoise_sees_hashed_names_as_immutable(collected: Collected) -> None:
    from django.test import Client

    client = Client()
    hashed = staticfiles_paths(collected)["admin/css/base.css"]
    response = client.get("/static/" + hashed)
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
    response = client.get("/static/manifest.json")
    assert response.status_code == 200
    assert "immutable" not in response.get("Cache-Control", "")


def test_collectstatic_again_removes_what_no_finder_reports(collected: Collected) -> None:
    from django.core.management import call_command

    record = collected.staging / ".kiln-staging.json"
    data = json.loads(record.read_text())
    data["files"].append("css/gone.css")
    record.write_text(json.dumps(data))
    gone = collected.staging / "css" / "gone.css"
    gone.write_text("a{color:red}")
    mine = collected.staging / ".notes"  # not recorded: never touched
    mine.write_text("mine")
    start = time.monotonic()
    call_command("collectstatic", interactive=False, verbosity=0)
    assert time.monotonic() - start < 30
    assert not gone.exists()
    assert mine.read_text() == "mine"
    assert "css/gone.css" not in staticfiles_paths(collected)
    assert kiln_checks() == []


def test_failed_build_raises_with_kiln_errors(collected: Collected, tmp_path: Path) -> None:
    from django.conf import settings
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.core.management import call_command
    from django.test import override_settings

    from kiln.django.storage import KilnBuildError

    bad = tmp_path / "bad"
    (bad / "broken").mkdir(parents=True)
    (bad / "broken" / "bad.css").write_text("a { background: url(missing.png) }\n")
    out = tmp_path / "static"
    kiln_setting = {"SOURCE_DIR": tmp_path / "staging", "CONFIG": settings.KILN["CONFIG"]}
    with override_settings(STATICFILES_DIRS=[bad], STATIC_ROOT=out, KILN=kiln_setting):
        with pytest.raises(KilnBuildError, match=r"missing\.png") as info:
            call_command("collectstatic", interactive=False, verbosity=0)
        assert str(bad / "broken" / "bad.css") + ":1:" in str(info.value)
        assert not (out / "staticfiles.json").exists()
        assert [m.id for m in kiln_checks()] == ["kiln.W001"]
    assert staticfiles_storage.url("css/app.css").startswith("/static/css/app.")


def test_chromium_loads_the_django_page_whole_and_enforces_sri(collected: Collected) -> None:
    from django.core.wsgi import get_wsgi_application

    require_browser()
    manifest = json.loads((collected.static_root / "manifest.json").read_text())
    with serve(get_wsgi_application()) as base:
        ok, report = browse(base + "/")
    assert ok, report
    assert_page_is_whole(report, manifest)

    # One byte of the served stylesheet changed: Chromium refuses it (a fresh WSGI app, so
    # WhiteNoise sees the file as it is now).
    hashed = manifest["assets"]["css/app.css"]["file"]
    saved = {p: p.read_bytes() for p in collected.static_root.glob(hashed + "*") if p.is_file()}
    try:
        tamper(collected.static_root, hashed)
        with serve(get_wsgi_application()) as base:
            ok, report = browse(base + "/")
        assert_sri_refused(ok, report, hashed)
    finally:
        for path, data in saved.items():
            path.write_bytes(data)


def test_kiln_watch_rebuilds_when_a_found_file_changes(tmp_path: Path, site: Site) -> None:
    """`manage.py kiln_watch` in its own process over a copy of the assets: an edit to a found
    file reaches STATIC_ROOT under a new name, without collectstatic."""
    import subprocess
    import sys

    assets = tmp_path / "assets"
    shutil.copytree(site.src, assets)
    var = tmp_path / "var"
    env = dict(
        os.environ,
        KILN_TEST_VAR=str(var),
        KILN_TEST_ASSETS=str(assets),
        KILN_TEST_CONFIG=str(site.config),
        DJANGO_SETTINGS_MODULE="tests.django_project.settings",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    manifest = var / "static" / "staticfiles.json"

    def app_css() -> str | None:
        try:
            return json.loads(manifest.read_text())["paths"]["css/app.css"]
        except (OSError, ValueError, KeyError):
            return None

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert watcher.poll() is None, f"kiln_watch exited: {watcher.returncode}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)

    watcher = subprocess.Popen(
        [sys.executable, "-m", "django", "kiln_watch", "--interval", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: app_css() is not None, "the first build")
        first = app_css()
        time.sleep(0.5)  # the watcher is up: kiln watch has built and is watching
        with open(assets / "css" / "app.css", "a", encoding="utf-8") as f:
            f.write("\n.kiln-watch { color: teal }\n")
        wait_for(lambda: app_css() not in (None, first), "a rebuild")
        assert b".kiln-watch" in (var / "static" / app_css()).read_bytes()
    finally:
        watcher.terminate()
        watcher.wait(timeout=20)
    # Stopping kiln_watch stops its `kiln watch` too.
    left = subprocess.run(["pgrep", "-f", str(var / "kiln-src")], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
