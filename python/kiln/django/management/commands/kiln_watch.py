"""``python manage.py kiln_watch``: development with ``KilnStorage``.

Runs ``collectstatic`` once (staging what the finders see and building it into ``STATIC_ROOT``),
then ``kiln watch`` over the staging folder, and copies every change to a found file (an app's
``static/``, ``STATICFILES_DIRS``) into the staging folder as it happens, so kiln rebuilds what
changed and the template tags (which re-read the manifest under ``DEBUG``) give the new URLs.
Run it beside ``runserver``; stop it with Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import get_finders
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from kiln.django import conf
from kiln.django.storage import KilnStorage

IGNORE = ["CVS", ".*", "*~"]


def found() -> dict[str, tuple[Path, int]]:
    """Every file the finders see: staged name -> (source path, mtime in ns)."""
    files: dict[str, tuple[Path, int]] = {}
    for finder in get_finders():
        for path, storage in finder.list(IGNORE):
            name = os.path.join(getattr(storage, "prefix", None) or "", path)
            name = name.replace(os.sep, "/")
            if name in files:  # the first finder wins, as collectstatic's does
                continue
            source = Path(storage.path(path))
            try:
                files[name] = (source, source.stat().st_mtime_ns)
            except OSError:
                continue
    return files


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Stage and build the static files (collectstatic), then rebuild with `kiln watch` "
        "whenever one changes. For development, beside runserver."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=0.5,
            help="Seconds between looks at the source files (default 0.5).",
        )

    def handle(self, *args: Any, interval: float = 0.5, **options: Any) -> None:
        storage = storages["staticfiles"]
        if not isinstance(storage, KilnStorage):
            raise CommandError(
                "kiln_watch needs STORAGES['staticfiles']['BACKEND'] = "
                "'kiln.django.storage.KilnStorage'."
            )
        # A SIGTERM (a process manager, a test) stops it like Ctrl-C: kiln watch is stopped too.
        signal.signal(signal.SIGTERM, _interrupt)
        call_command("collectstatic", interactive=False, verbosity=0)
        source, root = Path(storage.path("")), conf.static_root()
        assert root is not None  # collectstatic checked it
        seen = found()
        watcher = subprocess.Popen(storage.command("watch", source, root), cwd=source.parent)
        self.stdout.write(f"kiln_watch: {source} -> {root}; Ctrl-C to stop")
        try:
            while True:
                time.sleep(interval)
                if watcher.poll() is not None:
                    raise CommandError(f"kiln watch exited with status {watcher.returncode}")
                now = found()
                for name, (path, mtime) in now.items():
                    if seen.get(name, (None, None))[1] != mtime:
                        target = source / name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, target)
                for name in seen.keys() - now.keys():
                    (source / name).unlink(missing_ok=True)
                seen = now
        except KeyboardInterrupt:
            pass
        finally:
            if watcher.poll() is None:
                watcher.terminate()
                try:
                    watcher.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    watcher.kill()
