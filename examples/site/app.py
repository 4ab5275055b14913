"""The example site served by Flask, the way docs/flask.md describes.

    scripts/example            # builds assets/ into static/
    python examples/site/app.py [PORT] [STATIC_DIR]

Needs Flask, flask-static-digest and WhiteNoise (`pip install flask flask-static-digest whitenoise`).
The browser test in tests/serving.rs serves kiln's output of this site through this app.
"""
import json
import os
import re
import sys

from flask import Flask, render_template
from markupsafe import Markup
from flask_static_digest import FlaskStaticDigest
from whitenoise import WhiteNoise

HERE = os.path.dirname(os.path.abspath(__file__))
HASHED = re.compile(r"\.[0-9a-f]{12}\.[^/]+$")


def create_app(static_dir=os.path.join(HERE, "static")):
    app = Flask(__name__, static_folder=static_dir, static_url_path="/static", template_folder=os.path.join(HERE, "templates"))
    FlaskStaticDigest(app)
    app.wsgi_app = WhiteNoise(
        app.wsgi_app,
        root=static_dir,
        prefix="static/",
        immutable_file_test=lambda path, url: bool(HASHED.search(url)),
    )

    # kiln's manifest.json lists each image's width, height and variants: enough to write a
    # <picture> with AVIF and WebP sources and a srcset at every width (docs/manifest.md).
    with open(os.path.join(static_dir, "manifest.json"), encoding="utf-8") as f:
        kiln_manifest = json.load(f)

    @app.template_global()
    def picture(logical, alt, sizes):
        assets, base = kiln_manifest["assets"], kiln_manifest["public_url"]
        image = assets[logical]
        own = image["content_type"]

        def srcset(content_type):
            widths = [(v["width"], v["file"]) for v in image.get("variants", []) if v["content_type"] == content_type]
            if content_type == own:
                widths.append((image["width"], image["file"]))
            return ", ".join(f"{base}{file} {w}w" for w, file in sorted(set(widths)))

        sources = [
            Markup('<source type="{}" srcset="{}" sizes="{}">').format(t, srcset(t), sizes)
            for t in ("image/avif", "image/webp")
            if srcset(t)
        ]
        img = Markup('<img src="{}" srcset="{}" sizes="{}" width="{}" height="{}" alt="{}">').format(
            base + image["file"], srcset(own), sizes, image["width"], image["height"], alt
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
