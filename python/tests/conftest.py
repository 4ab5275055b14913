"""Shared fixtures: the kiln executable, and the example site (examples/site/assets) built once.

``KILN_BIN`` defaults to the repository's target/debug/kiln (then target/release/kiln) when it
is not set; without either, :func:`kiln.find_bin` must find an installed one. Every build of the
session shares one kiln cache, kept in pytest's cache folder (``.pytest_cache``) so that reruns
skip the image encoding; ``KILN_TEST_CACHE`` names another folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ASSETS = REPO / "examples" / "site" / "assets"
MANIFESTS = "kiln,django,flask,importmap"

if not os.environ.get("KILN_BIN"):
    for candidate in (REPO / "target" / "debug" / "kiln", REPO / "target" / "release" / "kiln"):
        if candidate.is_file():
            os.environ["KILN_BIN"] = str(candidate)
            break


@dataclass
class Site:
    """A kiln build: the source and output folders, the config it used."""

    src: Path
    out: Path
    config: Path

    @property
    def manifest_path(self) -> Path:
        return self.out / "manifest.json"


def write_config(path: Path, cache_dir: Path) -> Path:
    """examples/site/kiln.toml's settings (widths 320, unbundled CSS), with a shared cache."""
    path.write_text(
        'targets = ["> 0.5%", "last 2 versions", "not dead"]\n'
        "\n[css]\nbundle = false\n"
        "\n[images]\nwidths = [320]\n"
        f"\n[cache]\ndir = {str(cache_dir)!r}\nmax_size_mb = 512\n",
        encoding="utf-8",
    )
    return path


def kiln_build(config: Path, src: Path, out: Path, public_url: str = "/static/") -> None:
    import kiln

    cmd = [kiln.find_bin(), "build", "--config", str(config), "--src", str(src)]
    cmd += ["--out", str(out), "--public-url", public_url, "--manifest", MANIFESTS, "--quiet"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="session")
def kiln_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("KILN_TEST_CACHE")
    if configured:
        return Path(configured)
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("kiln-build-cache"))
    return tmp_path_factory.mktemp("kiln-cache")


@pytest.fixture(scope="session")
def kiln_config(tmp_path_factory: pytest.TempPathFactory, kiln_cache: Path) -> Path:
    return write_config(tmp_path_factory.mktemp("config") / "kiln.toml", kiln_cache)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example site's sources."""
    src = tmp_path_factory.mktemp("example") / "assets"
    shutil.copytree(EXAMPLE_ASSETS, src)
    return src


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, assets: Path, kiln_config: Path) -> Site:
    """The example site built with the kiln executable into a temporary folder."""
    out = tmp_path_factory.mktemp("built") / "static"
    kiln_build(kiln_config, assets, out)
    return Site(src=assets, out=out, config=kiln_config)
