"""kiln.flask: static_url_for like flask-static-digest's, the Jinja helpers, `flask kiln build`,
immutable caching of fingerprinted files."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

flask = pytest.importorskip("flask")
flask_static_digest = pytest.importorskip("flask_static_digest")

from flask import Blueprint, Flask, render_template_string  # noqa: E402
from flask_static_digest import FlaskStaticDigest  # noqa: E402
from markupsafe import Markup  # noqa: E402

import kiln  # noqa: E402
from kiln.flask import Kiln  # noqa: E402
from tests.browser import (  # noqa: E402
    assert_page_is_whole,
    assert_sri_refused,
    browse,
    require_browser,
    serve,
    tamper,
)
from tests.conftest import Site  # noqa: E402
from tests.htmlcheck import HASHED, parse, srcset, sri  # noqa: E402

BLUEPRINT_MANIFEST = {"widget.css": "widget.0123456789ab.css"}


def make_app(static: Path, tmp_path: Path, extension: type, **config: object) -> Flask:
    app = Flask("kilntest", static_folder=str(static), root_path=str(tmp_path))
    app.config.update(config)
    blueprint_static = tmp_path / "bp-static"
    blueprint_static.mkdir(exist_ok=True)
    (blueprint_static / "cache_manifest.json").write_text(json.dumps(BLUEPRINT_MANIFEST))
    bp = Blueprint("bp", "kilntest", static_folder=str(blueprint_static), url_prefix="/bp")
    bp.add_url_rule("/page", "page", lambda: "page")
    app.register_blueprint(bp)
    extension(app)
    return app


def static_url_for(app: Flask, endpoint: str, path: str = "/", **values: object) -> str:
    with app.test_request_context(path):
        return app.jinja_env.globals["static_url_for"](endpoint, **values)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"FLASK_STATIC_DIGEST_HOST_URL": "https://cdn.example.com"},
        {"FLASK_STATIC_DIGEST_HOST_URL": "https://cdn.example.com/"},
    ],
    ids=["no-host", "host", "host-slash"],
)
def test_static_url_for_matches_flask_static_digest(
    site: Site, tmp_path: Path, config: dict
) -> None:
    digest = make_app(site.out, tmp_path, FlaskStaticDigest, **config)
    ours = make_app(site.out, tmp_path, Kiln, **config)
    cache_manifest = json.loads((site.out / "cache_manifest.json").read_text())
    calls: list[tuple[str, str, dict]] = [
        ("static", "/", {"filename": name}) for name in [*cache_manifest, "nope.css"]
    ]
    calls += [
        ("static", "/", {"filename": "css/app.css", "_external": True}),
        ("static", "/", {"filename": "css/app.css", "v": "1"}),
        ("bp.static", "/", {"filename": "widget.css"}),
        (".static", "/bp/page", {"filename": "widget.css"}),
        (".static", "/", {"filename": "css/app.css"}),
    ]
    for endpoint, path, values in calls:
        expected = static_url_for(digest, endpoint, path, **values)
        assert static_url_for(ours, endpoint, path, **values) == expected, (endpoint, values)
    assert static_url_for(ours, "static", filename="css/app.css") == (
        config.get("FLASK_STATIC_DIGEST_HOST_URL", "").rstrip("/")
        + "/static/"
        + cache_manifest["css/app.css"]
    )


def test_kiln_host_url_wins(site: Site, tmp_path: Path) -> None:
    digest = make_app(site.out, tmp_path, FlaskStaticDigest, FLASK_STATIC_DIGEST_HOST_URL="//a.cdn")
    ours = make_app(site.out, tmp_path, Kiln, KILN_HOST_URL="//a.cdn")
    assert static_url_for(ours, "static", filename="js/main.js") == static_url_for(
        digest, "static", filename="js/main.js"
    )
    both = make_app(
        site.out, tmp_path, Kiln, KILN_HOST_URL="//a.cdn", FLASK_STATIC_DIGEST_HOST_URL="//b.cdn"
    )
    assert static_url_for(both, "static", filename="js/main.js").startswith("//a.cdn/static/js/")


def test_jinja_helpers_render_markup(site: Site, tmp_path: Path) -> None:
    app = make_app(site.out, tmp_path, Kiln)
    manifest = kiln.Manifest(site.manifest_path)
    with app.test_request_context("/"):
        globals_ = app.jinja_env.globals
        result = globals_["kiln_css"]("css/app.css")
        assert isinstance(result, Markup)
        assert str(result) == kiln.css(manifest, "css/app.css")
        assert globals_["kiln_url"]("css/app.css") == kiln.url(manifest, "css/app.css")
        page = render_template_string(
            "{{ kiln_importmap() }}{{ kiln_css('css/app.css') }}"
            "{{ kiln_preload('fonts/example.woff2') }}"
            "{{ kiln_js('js/main.js', nonce='n') }}"
            "{{ kiln_picture('img/rocket.jpg', alt='A <rocket>', class='hero') }}"
            "<a href=\"{{ kiln_url('img/logo.svg') }}\">"
        )
    elements = parse(page)
    assert [e.tag for e in elements] == [
        "script", "link", "link", "link", "script", "picture", "source", "source", "img", "a",
    ]  # fmt: skip
    assert elements[-2]["alt"] == "A <rocket>" and elements[-2]["class"] == "hero"
    assert "A <rocket>" not in page
    for element in elements:
        if element.get("integrity"):
            url = element.get("href") or element["src"]
            path = site.out / url[len("/static/") :]
            assert element["integrity"] == sri(path.read_bytes())


def test_helpers_follow_the_host_url(site: Site, tmp_path: Path) -> None:
    app = make_app(site.out, tmp_path, Kiln, KILN_HOST_URL="https://cdn.example.com")
    with app.test_request_context("/"):
        [link] = parse(str(app.jinja_env.globals["kiln_css"]("css/app.css")))
        picture = parse(app.jinja_env.globals["kiln_picture"]("img/rocket.jpg", alt=""))
    assert link["href"].startswith("https://cdn.example.com/static/css/app.")
    assert all(
        url.startswith("https://cdn.example.com/static/img/rocket")
        for e in picture
        if e.get("srcset")
        for url, _ in srcset(e["srcset"])
    )


def test_helpers_follow_a_script_root(site: Site, tmp_path: Path) -> None:
    app = make_app(site.out, tmp_path, Kiln)
    with app.test_request_context("/", base_url="http://localhost/app/"):
        globals_ = app.jinja_env.globals
        importmap = json.loads(parse(str(globals_["kiln_importmap"]()))[0].text)
        script = parse(str(globals_["kiln_js"]("js/main.js")))[-1]
        assert globals_["static_url_for"]("static", filename="js/main.js") == script["src"]
    assert script["src"].startswith("/app/static/js/main.")
    assert script["src"] in importmap["imports"].values()
    assert all(k.startswith("/app/static/") for k in importmap["imports"])


def test_unknown_asset(site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(site.out, tmp_path, Kiln)
    app.testing = True
    with app.test_request_context("/"), pytest.raises(kiln.UnknownAsset):
        app.jinja_env.globals["kiln_css"]("css/nope.css")
    app.testing = False
    with app.test_request_context("/"):
        assert app.jinja_env.globals["kiln_css"]("css/nope.css") == Markup("")
    assert any("css/nope.css" in r.getMessage() for r in caplog.records if r.name == "kiln")


def test_fingerprinted_files_are_served_immutable(site: Site, tmp_path: Path) -> None:
    app = make_app(site.out, tmp_path, Kiln)
    client = app.test_client()
    with app.test_request_context("/"):
        url = app.jinja_env.globals["static_url_for"]("static", filename="css/app.css")
    assert HASHED.search(url)
    response = client.get(url)
    assert response.status_code == 200
    assert response.cache_control.immutable
    assert response.cache_control.public
    assert response.cache_control.max_age == 31536000
    assert "no-cache" not in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    response.close()
    response = client.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.cache_control.immutable
    response = client.get("/static/manifest.json")
    assert response.status_code == 200 and not response.cache_control.immutable
    response.close()


def test_flask_kiln_build(site: Site, tmp_path: Path) -> None:
    root = tmp_path / "app"
    shutil.copytree(site.src, root / "assets")
    static = root / "static"
    app = Flask("kilnbuild", static_folder=str(static), root_path=str(root))
    app.config["KILN_CONFIG"] = str(site.config)
    Kiln(app)
    with app.test_request_context("/"):
        assert app.jinja_env.globals["static_url_for"]("static", filename="css/app.css") == (
            "/static/css/app.css"  # nothing built yet: flask-static-digest's fallback
        )
    result = app.test_cli_runner().invoke(args=["kiln", "build", "--quiet"])
    assert result.exit_code == 0, result.output
    for name in ("manifest.json", "cache_manifest.json", "importmap.json"):
        assert (static / name).is_file(), name
    cache_manifest = json.loads((static / "cache_manifest.json").read_text())
    assert json.loads((static / "manifest.json").read_text())["public_url"] == "/static/"
    with app.test_request_context("/"):
        # The manifests written after start-up are picked up without a restart.
        url = app.jinja_env.globals["static_url_for"]("static", filename="css/app.css")
        assert url == "/static/" + cache_manifest["css/app.css"]
        assert "integrity" in str(app.jinja_env.globals["kiln_css"]("css/app.css"))
    response = app.test_client().get(url)
    assert response.status_code == 200 and response.cache_control.immutable
    response.close()


def test_flask_kiln_build_failure_exits_non_zero(tmp_path: Path, site: Site) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "bad.css").write_text("a { background: url(missing.png) }\n")
    app = Flask("kilnbad", static_folder=str(tmp_path / "static"), root_path=str(tmp_path))
    app.config["KILN_CONFIG"] = str(site.config)
    Kiln(app)
    result = app.test_cli_runner().invoke(args=["kiln", "build"])
    assert result.exit_code == 1
    assert not (tmp_path / "static" / "manifest.json").exists()


def test_build_command(tmp_path: Path) -> None:
    from kiln.flask import build_command

    app = Flask("cmd", static_folder=str(tmp_path / "s"), static_url_path="/assets")
    Kiln(app)
    cmd = build_command(app, ("--quiet",))
    assert cmd[1:] == [
        "build",
        "--src",
        os.path.join(app.root_path, "assets"),
        "--out",
        str(tmp_path / "s"),
        "--public-url",
        "/assets/",
        "--manifest",
        "kiln,flask,importmap",
        "--quiet",
    ]
    app.config["KILN_HOST_URL"] = "https://cdn.example.com/"
    cmd = build_command(app)
    assert cmd[cmd.index("--public-url") + 1] == "https://cdn.example.com/assets/"


def test_manifest_reload_keeps_urls_in_step(site: Site, tmp_path: Path) -> None:
    static = tmp_path / "static"
    shutil.copytree(site.out, static)
    app = make_app(static, tmp_path, Kiln)
    path = static / "cache_manifest.json"
    with app.test_request_context("/"):
        first = app.jinja_env.globals["static_url_for"]("static", filename="css/app.css")
        data = json.loads(path.read_text())
        data["css/app.css"] = "css/app.fedcba987654.css"
        path.write_text(json.dumps(data))
        later = time.time() + 5
        os.utime(path, (later, later))
        second = app.jinja_env.globals["static_url_for"]("static", filename="css/app.css")
    assert first != second == "/static/css/app.fedcba987654.css"


def test_chromium_loads_the_flask_page_whole_and_enforces_sri(site: Site, tmp_path: Path) -> None:

    require_browser()
    static = tmp_path / "static"
    shutil.copytree(site.out, static)
    app = make_app(static, tmp_path, Kiln)
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>kiln + Flask</title>'
        '<link rel="icon" href="data:,">'
        "{{ kiln_importmap() }}{{ kiln_css('css/app.css') }}"
        "{{ kiln_preload('fonts/example.woff2') }}{{ kiln_js('js/main.js') }}</head><body>"
        "{{ kiln_picture('img/rocket.jpg', alt='A rocket') }}"
        '<div id="logo" class="logo"></div><p id="greeting">Loading…</p><p id="lazy"></p>'
        "</body></html>"
    )
    app.add_url_rule("/", "page", lambda: render_template_string(page))
    manifest = json.loads((static / "manifest.json").read_text())
    with serve(app) as base:
        ok, report = browse(base + "/")
    assert ok, report
    assert_page_is_whole(report, manifest)

    hashed = manifest["assets"]["css/app.css"]["file"]
    tamper(static, hashed)
    with serve(app) as base:
        ok, report = browse(base + "/")
    assert_sri_refused(ok, report, hashed)
