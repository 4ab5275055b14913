"""kiln: build-time asset pipeline (the `kiln` executable) and its Python integrations.

- :func:`find_bin` locates the `kiln` executable this distribution installed (`python -m kiln ARGS`
  runs it).
- :class:`Manifest` reads the `manifest.json` a build wrote; :func:`url`, :func:`css`, :func:`js`,
  :func:`preload`, :func:`picture` and :func:`importmap` turn its entries into HTML.
- ``kiln.django`` (an installable Django app: storage, template tags, Jinja2 globals, checks) and
  ``kiln.flask`` (a Flask extension) build on them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import sysconfig

from ._html import css, importmap, js, picture, preload, url
from ._manifest import Manifest, UnknownAsset

__all__ = [
    "Manifest",
    "UnknownAsset",
    "__version__",
    "css",
    "find_bin",
    "importmap",
    "js",
    "picture",
    "preload",
    "url",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kiln-assets")
    except PackageNotFoundError:  # running from a source checkout
        return "0+unknown"


__version__ = _version()


def _user_scheme() -> str:
    if sys.version_info >= (3, 10):
        return sysconfig.get_preferred_scheme("user")
    if sys.platform == "darwin" and getattr(sys, "_framework", None):
        return "osx_framework_user"
    return f"{os.name}_user"


def _candidates() -> list[str]:
    exe = "kiln" + (sysconfig.get_config_var("EXE") or "")
    folders = [sysconfig.get_path("scripts")]
    with contextlib.suppress(KeyError):  # no user scheme on this platform
        folders.append(sysconfig.get_path("scripts", _user_scheme()))
    packages = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # `pip install --target DIR` puts scripts in DIR/bin, beside the package.
    folders.append(os.path.join(packages, "bin"))
    # `pip install --prefix P`: the package in P/lib/pythonX.Y/site-packages (P/Lib/site-packages
    # on Windows), the scripts in P/bin (P/Scripts).
    if os.path.basename(packages).lower() in ("site-packages", "dist-packages"):
        if sys.platform == "win32":
            folders.append(os.path.join(os.path.dirname(os.path.dirname(packages)), "Scripts"))
        else:
            folders.append(
                os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(packages))), "bin")
            )
    # The base interpreter's, for a virtual environment that sees its packages
    # (--system-site-packages).
    if sys.base_prefix != sys.prefix:
        base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
        folders.append(sysconfig.get_path("scripts", vars=base))
    folders.append(os.path.dirname(os.path.abspath(sys.executable)))
    seen: list[str] = []
    for folder in folders:
        path = os.path.join(folder, exe)
        if path not in seen:
            seen.append(path)
    return seen


def find_bin() -> str:
    """The path of the `kiln` executable.

    ``KILN_BIN`` (a path, or a command name looked up on ``PATH``) wins when set; otherwise the
    executable the ``kiln-assets`` wheel installed: in this environment's scripts folder, the user
    scheme's (``pip install --user``), ``pip install --target``'s ``bin`` folder, that of the
    prefix the package is installed under (``pip install --prefix``), the base interpreter's
    (a virtual environment with ``--system-site-packages``), or beside ``sys.executable``.
    Raises :class:`FileNotFoundError` naming every place it looked.
    """
    env = os.environ.get("KILN_BIN")
    if env:
        if os.path.isfile(env):
            return env
        found = shutil.which(env)
        if found:
            return found
        raise FileNotFoundError(f"KILN_BIN is set to {env!r}, which is not an executable file")
    candidates = _candidates()
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        "the kiln executable was not found; looked in: "
        + ", ".join(candidates)
        + ". Reinstall the kiln-assets package, or set KILN_BIN to the executable's path."
    )
