"""`make test-pythons`: the unit tests on every Python 3.10 to 3.13 this machine offers (on
PATH, or installed by pyenv), each in its own venv under .venvs/."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def interpreters() -> dict[str, str]:
    found: dict[str, str] = {}
    for minor in (10, 11, 12, 13):
        candidates = [shutil.which(f"python3.{minor}") or ""]
        candidates += sorted(
            glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3"))
        )
        for candidate in candidates:
            if (
                candidate
                and subprocess.run([candidate, "--version"], capture_output=True).returncode == 0
            ):
                found[f"3.{minor}"] = candidate
                break
    return found


def main() -> int:
    results = {}
    for version, python in interpreters().items():
        venv = ROOT / ".venvs" / version
        if not (venv / "bin" / "pytest").exists():
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-e", ".", "pytest"],
                cwd=ROOT,
                check=True,
            )
        run = subprocess.run(
            [
                str(venv / "bin" / "pytest"),
                "-q",
                "-p",
                "no:xdist",
                "-p",
                "no:cacheprovider",
                "tests/unit",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        results[version] = (
            run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-500:]
        )
        print(f"Python {version} ({python}): {results[version]}", flush=True)
        if run.returncode != 0:
            print(run.stdout[-3000:], file=sys.stderr)
            return 1
    if not results:
        print("no Python 3.10 to 3.13 found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
