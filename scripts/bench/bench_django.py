"""Minimal Django settings for `collectstatic` in scripts/bench.sh (paths from the environment)."""
import os

SECRET_KEY = "kiln-bench"
INSTALLED_APPS = ["django.contrib.staticfiles"]
STATIC_URL = "/static/"
STATICFILES_DIRS = [os.environ["KILN_BENCH_SRC"]]
STATIC_ROOT = os.environ["KILN_BENCH_OUT"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": os.environ["KILN_BENCH_STORAGE"]},
}
