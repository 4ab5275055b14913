"""django_check.py OUT LOGICAL EXPECTED: Django renders {% static LOGICAL %} to kiln's fingerprinted URL
(also with a CDN STATIC_URL), and with DEBUG=False WhiteNoise serves that URL as immutable, with
kiln's Brotli sibling when the client accepts it and there is one. Exits non-zero with the reason on any mismatch."""

import json
import os
import sys

import brotli
import django
from django.conf import settings

out, logical, expected = sys.argv[1], sys.argv[2], sys.argv[3]
settings.configure(
    DEBUG=False,
    SECRET_KEY="kiln-e2e",
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.staticfiles"],
    MIDDLEWARE=["whitenoise.middleware.WhiteNoiseMiddleware"],
    STATIC_URL="/static/",
    STATIC_ROOT=out,
    STORAGES={
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    },
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
)
urlpatterns = []
django.setup()

from django.template import Context, Template
from django.test import Client, override_settings

tag = Template("{% load static %}{% static '" + logical + "' %}")
rendered = tag.render(Context())
assert rendered == "/static/" + expected, (
    f"{{% static %}} rendered {rendered!r}, expected /static/{expected}"
)
with override_settings(STATIC_URL="https://static.example.com/"):
    cdn = tag.render(Context())
    assert cdn == "https://static.example.com/" + expected, f"with a CDN STATIC_URL: {cdn!r}"

response = Client().get("/static/" + expected, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
assert response.status_code == 200, f"GET /static/{expected}: {response.status_code}"
cache = response.headers.get("Cache-Control")
assert cache == "max-age=315360000, public, immutable", f"Cache-Control: {cache!r}"
encoding = response.headers.get("Content-Encoding")
body = b"".join(response.streaming_content)
with open(os.path.join(out, expected), "rb") as f:
    original = f.read()
if os.path.exists(os.path.join(out, expected + ".br")):
    assert encoding == "br", f"Content-Encoding: {encoding!r}"
    assert brotli.decompress(body) == original, "the Brotli body does not decode to the file"
else:  # an already-compressed file (an AVIF variant): served as it is
    assert encoding is None and body == original, f"Content-Encoding: {encoding!r}"
print(json.dumps({"static": rendered, "cdn": cdn, "cache_control": cache, "encoding": encoding}))
