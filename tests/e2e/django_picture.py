"""django_picture.py OUT DJANGO_MD: runs the `picture` template tag exactly as docs/django.md shows it
(the Python block is taken from the doc) against kiln's output OUT, with ManifestStaticFilesStorage,
and prints the rendered HTML as JSON."""

import json
import re
import sys
import tempfile
from pathlib import Path

import django
from django.conf import settings

out, doc = sys.argv[1], Path(sys.argv[2]).read_text()
code = re.search(r"```python\n# yourapp/templatetags/kiln.py\n(.*?)```", doc, re.DOTALL).group(1)
modules = Path(tempfile.mkdtemp())
(modules / "kiln_picture_tag.py").write_text(code)
sys.path.insert(0, str(modules))

settings.configure(
    DEBUG=False,
    INSTALLED_APPS=["django.contrib.staticfiles"],
    STATIC_URL="/static/",
    STATIC_ROOT=out,
    STORAGES={
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}
    },
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {"libraries": {"kiln": "kiln_picture_tag"}},
        }
    ],
)
django.setup()

from django.template import engines

html = (
    engines["django"]
    .from_string(
        '{% load kiln %}{% picture "img/rocket.jpg" alt="A rocket" sizes="(max-width: 640px) 100vw, 640px" %}'
    )
    .render({})
)
print(json.dumps({"html": html}))
