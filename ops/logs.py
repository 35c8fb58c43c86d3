"""Reading the stack's logs: the last lines, or following them, always redacted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ops.procs import tail
from ops.secrets import redact
from ops.settings import Settings

COMPONENTS = ("db", "api", "migrate")


def log_file(settings: Settings, component: str) -> Path:
    return settings.logs_dir / f"{component}.log"


def last_lines(path: Path, count: int, secrets: list[str]) -> str:
    return redact(tail(path, count), secrets)


def follow(
    paths: list[Path],
    secrets: list[str],
    stop: Callable[[], bool] = lambda: False,
    poll: float = 0.2,
) -> Iterator[str]:
    """Yield new lines appended to `paths` (from their current end) until `stop()`."""
    offsets = {path: path.stat().st_size if path.exists() else 0 for path in paths}
    while not stop():
        quiet = True
        for path in paths:
            if not path.exists():
                continue
            size = path.stat().st_size
            if size < offsets[path]:  # rotated or truncated
                offsets[path] = 0
            if size > offsets[path]:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    handle.seek(offsets[path])
                    chunk = handle.read()
                    offsets[path] = handle.tell()
                prefix = f"{path.stem}| " if len(paths) > 1 else ""
                for line in chunk.splitlines():
                    yield prefix + redact(line, secrets)
                quiet = False
        if quiet:
            time.sleep(poll)
