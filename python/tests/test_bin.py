"""find_bin() and `python -m kiln`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import kiln

PYTHON_DIR = Path(__file__).resolve().parents[1]


def test_find_bin_honours_kiln_bin() -> None:
    path = kiln.find_bin()
    assert os.path.isfile(path) and os.access(path, os.X_OK)
    assert path == os.environ["KILN_BIN"]


def test_find_bin_without_kiln_bin_names_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KILN_BIN")
    monkeypatch.setattr(kiln, "_candidates", lambda: [str(tmp_path / "bin" / "kiln")])
    with pytest.raises(FileNotFoundError, match="KILN_BIN") as info:
        kiln.find_bin()
    assert str(tmp_path / "bin" / "kiln") in str(info.value)
    exe = tmp_path / "bin" / "kiln"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    assert kiln.find_bin() == str(exe)


def test_find_bin_searches_the_scripts_folders() -> None:
    import sysconfig

    candidates = kiln._candidates()
    assert candidates[0] == os.path.join(sysconfig.get_path("scripts"), "kiln")
    assert os.path.join(os.path.dirname(sys.executable), "kiln") in candidates


def test_find_bin_looks_under_the_install_prefix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sysconfig

    exe = "kiln" + (sysconfig.get_config_var("EXE") or "")
    if sys.platform == "win32":
        packages, scripts = tmp_path / "Lib" / "site-packages", tmp_path / "Scripts"
    else:
        packages, scripts = tmp_path / "lib" / "python3.12" / "site-packages", tmp_path / "bin"
    monkeypatch.setattr(kiln, "__file__", str(packages / "kiln" / "__init__.py"))
    candidates = kiln._candidates()
    assert str(scripts / exe) in candidates  # pip install --prefix
    assert str(packages / "bin" / exe) in candidates  # pip install --target


def test_bad_kiln_bin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_BIN", "/nonexistent/kiln")
    with pytest.raises(FileNotFoundError, match="/nonexistent/kiln"):
        kiln.find_bin()


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    return subprocess.run(
        [sys.executable, "-m", "kiln", *args], capture_output=True, text=True, env=env, check=False
    )


def test_python_m_kiln_runs_the_executable() -> None:
    result = run_module("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("kiln ")


def test_python_m_kiln_exits_with_its_status() -> None:
    result = run_module("build", "--no-such-flag")
    assert result.returncode == 2
    assert "--no-such-flag" in result.stderr


def test_python_m_kiln_without_the_executable(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR), KILN_BIN=str(tmp_path / "missing"))
    result = subprocess.run(
        [sys.executable, "-m", "kiln", "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("kiln: error: KILN_BIN")
    assert "Traceback" not in result.stderr


def test_version() -> None:
    assert isinstance(kiln.__version__, str) and kiln.__version__
