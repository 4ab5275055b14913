"""The example site served by Flask, the way docs/flask.md describes.

    scripts/example            # builds assets/ into static/
    python examples/site/app.py [PORT] [STATIC_DIR]

Needs Flask, flask-static-digest and WhiteNoise (`pip install flask flask-static-digest whitenoise`).
The browser test in tests/serving.rs serves kiln's output of this site through this app. The
page loads its stylesheet and entry module with Subresource Integrity from kiln's manifest, from
this app (public_url "/static/") or from a CDN (an absolute public_url; this app then serves the
same files under the same path too, with CORS, so one process can stand in for both origins).
"""

import json
import os
import re
import sys
from urllib.parse import urlsplit

from flask import Flask, render_template
from flask_static_digest import FlaskStaticDigest
from markupsafe import Markup
from whitenoise import WhiteNoise

HERE = os.path.dirname(os.path.abspath(__file__))
HASHED = re.compile(r"\.[0-9a-f]{12}\.[^/]+$")


STATIC = os.path.join(HERE, "static")


def create_app(static_dir=STATIC):
    # kiln's manifest.json lists each asset's fingerprinted file and integrity, and each image's
    # width, height and variants: enough to write a <picture> with AVIF and WebP sources and a
    # srcset at every width (docs/manifest.md).
    with open(os.path.join(static_dir, "manifest.json"), encoding="utf-8") as f:
        kiln_manifest = json.load(f)
    # public_url is a path ("/static/": this app serves the files) or a URL on another origin
    # ("https://static.example.com/static/": a CDN does). Either way its path is where the files
    # are; a CDN's origin goes to flask-static-digest, which prefixes url_for's path with it.
    public_url = kiln_manifest["public_url"]
    parts = urlsplit(public_url)
    path = "/" + parts.path.strip("/") + "/" if parts.path.strip("/") else "/"
    app = Flask(
        __name__,
        static_folder=static_dir,
        static_url_path=path,
        template_folder=os.path.join(HERE, "templates"),
    )
    if parts.netloc:
        app.config["FLASK_STATIC_DIGEST_HOST_URL"] = (
            f"{parts.scheme}:" if parts.scheme else ""
        ) + f"//{parts.netloc}"
    FlaskStaticDigest(app)  # reads FLASK_STATIC_DIGEST_HOST_URL here, so set it first
    # Serves the files here too (the CDN's origin, or a stand-in for it in development and tests).
    # WhiteNoise sends Access-Control-Allow-Origin: *, which crossorigin="anonymous" needs when the
    # page is on another origin.
    app.wsgi_app = WhiteNoise(
        app.wsgi_app,
        root=static_dir,
        prefix=path,
        immutable_file_test=lambda _path, url: bool(HASHED.search(url)),
    )

    @app.template_global()
    def sri(logical):
        """The Subresource Integrity value of an asset, for <link integrity> and <script integrity>."""
        return kiln_manifest["assets"][logical]["integrity"]

    # Where kiln's manifest is served, for scripts on the page (tests/e2e/browser.mjs reads it).
    app.add_template_global(public_url + "manifest.json", "manifest_url")

    @app.template_global()
    def picture(logical, alt, sizes):
        assets, base = kiln_manifest["assets"], kiln_manifest["public_url"]
        image = assets[logical]
        own = image["content_type"]

        def srcset(content_type):
            widths = [
                (v["width"], v["file"])
                for v in image.get("variants", [])
                if v["content_type"] == content_type
            ]
            if content_type == own:
                widths.append((image["width"], image["file"]))
            return ", ".join(f"{base}{file} {w}w" for w, file in sorted(set(widths)))

        sources = [
            Markup('<source type="{}" srcset="{}" sizes="{}">').format(t, srcset(t), sizes)
            for t in ("image/avif", "image/webp")
            if srcset(t)
        ]
        img = Markup(
            '<img src="{}" srcset="{}" sizes="{}" width="{}" height="{}" alt="{}">'
        ).format(
            base + image["file"],
            srcset(own),
            sizes,
            image["width"],
            image["height"],
            alt,
        )
        return Markup("<picture>{}{}</picture>").format(Markup("").join(sources), img)

    @app.route("/")
    def index():
        return render_template("index.html")

    return app


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    static_dir = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(HERE, "static")
    create_app(static_dir).run(host="127.0.0.1", port=port)
