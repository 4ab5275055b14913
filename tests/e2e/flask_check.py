"""flask_check.py OUT LOGICAL EXPECTED: flask-static-digest's static_url_for gives kiln's fingerprinted URL
(and the CDN form with FLASK_STATIC_DIGEST_HOST_URL), and Flask + WhiteNoise serves it immutable
with kiln's Brotli sibling. Exits non-zero with the reason on any mismatch."""

import json
import re
import sys
from pathlib import Path

import brotli
from flask import Flask
from flask_static_digest import FlaskStaticDigest
from whitenoise import WhiteNoise

out, logical, expected = sys.argv[1], sys.argv[2], sys.argv[3]


def app_with(**config):
    app = Flask(__name__, static_folder=out, static_url_path="/static")
    app.config.update(config)
    FlaskStaticDigest(app)
    return app


app = app_with()
with app.test_request_context():
    url = app.jinja_env.globals["static_url_for"]("static", filename=logical)
assert url == "/static/" + expected, f"static_url_for gave {url!r}, expected /static/{expected}"

cdn_app = app_with(FLASK_STATIC_DIGEST_HOST_URL="https://cdn.example.com")
with cdn_app.test_request_context():
    cdn = cdn_app.jinja_env.globals["static_url_for"]("static", filename=logical)
assert cdn == "https://cdn.example.com/static/" + expected, f"with a host URL: {cdn!r}"

hashed = re.compile(r"\.[0-9a-f]{12}\.[^/]+$")
app.wsgi_app = WhiteNoise(
    app.wsgi_app,
    root=out,
    prefix="static/",
    immutable_file_test=lambda p, u: bool(hashed.search(u)),
)
response = app.test_client().get("/static/" + expected, headers={"Accept-Encoding": "br"})
assert response.status_code == 200, f"GET: {response.status_code}"
cache = response.headers.get("Cache-Control")
assert cache == "max-age=315360000, public, immutable", f"Cache-Control: {cache!r}"
assert response.headers.get("Content-Encoding") == "br", (
    f"Content-Encoding: {response.headers.get('Content-Encoding')!r}"
)
assert brotli.decompress(response.get_data()) == Path(out, expected).read_bytes()
print(json.dumps({"static_url_for": url, "cdn": cdn, "cache_control": cache}))
