"""Remembering that a registry did not answer, so an air-gapped machine pays for it once an hour.

A failed pull (no route, a DNS timeout) is recorded per image in the user's cache directory;
for FORGET_AFTER_S the harness does not try that pull again and says it remembered.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

FORGET_AFTER_S = 3600.0


def memory_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "homer-ops" / "pull-failures.json"


def _read(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recent_failure(image: str, now: float | None = None) -> str | None:
    """Why pulling `image` failed within the last FORGET_AFTER_S seconds, or None."""
    entry = _read(memory_file()).get(image)
    if not isinstance(entry, dict):
        return None
    failed_at = entry.get("failed_at")
    if not isinstance(failed_at, int | float) or (now or time.time()) - failed_at > FORGET_AFTER_S:
        return None
    return str(entry.get("reason") or "the registry did not answer")


def remember_failure(image: str, reason: str, now: float | None = None) -> None:
    """Record a failed pull of `image` (best effort: an unwritable cache only costs a retry)."""
    path = memory_file()
    data = _read(path)
    data[image] = {"failed_at": now or time.time(), "reason": reason[:200]}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)


def forget(image: str) -> None:
    """A pull of `image` worked: drop what was remembered about it."""
    path = memory_file()
    data = _read(path)
    if data.pop(image, None) is not None:
        with contextlib.suppress(OSError):
            path.write_text(json.dumps(data, indent=1), encoding="utf-8")
