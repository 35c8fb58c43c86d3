"""Reading the stack's logs: the last lines, or following them, always redacted."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ops.errors import UsageError
from ops.logmux import LogFollower, prefix, prefix_width
from ops.logmux import follow as follow_lines
from ops.procs import tail
from ops.secrets import redact
from ops.settings import COMPONENTS, Settings
from ops.state import load_state_or_fresh
from ops.steps import Emit


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


def chosen(settings: Settings, component: str | None, n: Any) -> tuple[dict[str, Path], int, list[str]]:
    """`invoke logs`: the logs shown (one component's, else db, api and the declared processes'),
    how many lines of each, and the secrets to mask; UsageError for an unknown log or a bad -n."""
    state = load_state_or_fresh(settings.state_file)
    known = (*COMPONENTS, *state.processes)
    if component not in (None, *known):
        raise UsageError(f"unknown log {component!r}", f"choose one of {', '.join(known)}")
    if n is not None and (not str(n).isdigit() or int(n) < 1):
        raise UsageError(f"-n must be a positive whole number, not {n!r}")
    shown = [component] if component else ["db", "api", *state.processes]
    return {name: settings.log_file(name) for name in shown}, int(n or 50), state.secrets


def as_is(line: str) -> str:
    return line


def shaper(readable: bool) -> Callable[[str], str]:
    """How `invoke logs` shows each line: made readable (on a terminal, `ops.logview`), or as it is."""
    if not readable:
        return as_is
    from ops.logview import readable as made_readable

    return lambda line: made_readable(line, colour=True)


def show_tails(
    paths: Mapping[str, Path],
    count: int,
    secrets: list[str],
    emit: Emit = print,
    shape: Callable[[str], str] = as_is,
) -> None:
    """The last `count` lines of each log (each through `shape`, e.g. `ops.logview.readable`), under a
    `==> path <==` header when there are several."""
    for path in paths.values():
        if len(paths) > 1:
            emit(f"==> {path} <==")
        text = last_lines(path, count, secrets).rstrip()
        emit("\n".join(shape(line) for line in text.splitlines()) or "(empty)")


def followed(
    follower: LogFollower, paths: Mapping[str, Path], colour: bool, shape: Callable[[str], str] = as_is
) -> Iterator[str]:
    """The new lines (through `shape`), until Ctrl-C: one log bare, several after a `name | ` column
    (coloured)."""
    width = prefix_width(paths)
    for line in follow_lines(follower, stop=lambda: False):
        head = prefix(line.component, width, colour) if len(paths) > 1 else ""
        yield head + shape(line.text)
