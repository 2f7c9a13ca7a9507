"""Write a refresh token Cronofy rotated back into the accounts file, atomically."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
from pathlib import Path

import yaml  # a dependency of singer-sdk

_LOCK = threading.Lock()  # one rewrite at a time: several accounts may rotate in one run


def is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yml", ".yaml")


def save_refresh_token(path: str | os.PathLike[str], account_id: str, refresh_token: str) -> None:
    """Replace ``account_id``'s ``refresh_token`` in the file (a list, or ``{"accounts":
    [...]}``), keeping its format and mode. The new content goes to a temporary file in the
    same directory, which then replaces the old one: a crash leaves one or the other whole."""
    target = Path(path).resolve()  # a symlinked file is rewritten where it lives
    with _LOCK:
        text = target.read_text(encoding="utf-8")
        data = yaml.safe_load(text) if is_yaml(target) else json.loads(text)
        entries = data["accounts"] if isinstance(data, dict) else data
        matches = [e for e in entries if isinstance(e, dict) and e.get("account_id") == account_id]
        if len(matches) != 1:
            msg = f"{target} has {len(matches)} entries for account {account_id}, not one"
            raise ValueError(msg)
        matches[0]["refresh_token"] = refresh_token
        if is_yaml(target):
            rendered = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        else:
            rendered = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        mode = stat.S_IMODE(target.stat().st_mode)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(rendered)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
