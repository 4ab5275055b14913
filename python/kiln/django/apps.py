from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class KilnConfig(AppConfig):
    name = "kiln.django"
    label = "kiln"
    verbose_name = "kiln"

    def ready(self) -> None:
        from .checks import check_kiln

        checks.register(check_kiln, checks.Tags.staticfiles)
