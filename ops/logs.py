"""Reading the stack's logs: the last lines, or following them, always redacted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ops.logmux import LogFollower, prefix, prefix_width
from ops.logmux import follow as follow_lines
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
    """Yield new lines appended to `paths` (from their current end) until `stop()`: bare for one
    path, after a `name | ` column for several (`ops.logmux` does the following)."""
    follower = LogFollower({path.stem: path for path in paths}, secrets)
    width = prefix_width(follower.components)
    for line in follow_lines(follower, stop, poll_s=poll):
        yield line.text if len(paths) == 1 else prefix(line.component, width, colour=False) + line.text
