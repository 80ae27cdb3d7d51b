"""The Makefile's front door on a machine whose python3 cannot make a virtual environment
(Debian and Ubuntu without python3-venv): `make demo` says what to install, in one sentence.

The real Makefile runs in a scratch directory (with the two files its venv step depends
on), so nothing touches this checkout's .venv."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = (
    "-m venv failed: on Debian or Ubuntu, install python3-venv first "
    "(sudo apt-get install python3-venv), then run make again."
)

# What Debian's python3 says without python3-venv, then its exit status.
PYTHON_WITHOUT_VENV = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  echo "The virtual environment was not created successfully because ensurepip is not" >&2
  echo "available.  On Debian/Ubuntu systems, you need to install the python3-venv package" >&2
  exit 1
fi
exec python3 "$@"
"""


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml", "requirements-dev.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    python = tmp_path / "python3-without-venv"
    python.write_text(PYTHON_WITHOUT_VENV)
    python.chmod(0o755)
    return tmp_path


def make(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_demo_says_to_install_python3_venv(scratch):
    result = make(scratch, f"PYTHON={scratch / 'python3-without-venv'}", "demo")
    assert result.returncode != 0
    sentences = [line for line in result.stderr.splitlines() if SENTENCE in line]
    assert len(sentences) == 1, result.stderr
    assert sentences[0] == f"{scratch / 'python3-without-venv'} {SENTENCE}"
    # It stopped there: python was asked for a venv and nothing else, and pip never ran.
    assert (scratch / "calls").read_text().splitlines() == ["-m venv .venv"]
    assert not (scratch / ".venv" / ".installed").exists()


def test_the_sentence_is_not_said_when_venv_works(scratch):
    # A dry run with a python that can make venvs: the step is the plain venv command.
    result = make(scratch, "-n", "PYTHON=python3", ".venv/.installed")
    assert result.returncode == 0, result.stderr
    assert "python3 -m venv .venv ||" in result.stdout
    assert SENTENCE not in result.stderr


def test_check_image_is_a_make_target_ci_runs():
    makefile = (ROOT / "Makefile").read_text()
    assert "\ncheck-image:\n\t@bash scripts/image-check.sh\n" in makefile
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line and not line.startswith("#")]
    # After every test; CI=true makes the script fail rather than skip.
    assert commands.index("make check-image") > commands.index("make test-postgres")
    assert "export CI=true" in commands
