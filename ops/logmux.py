"""Following several logs at once: new complete lines, redacted, across rotation and truncation."""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.color import ColorSystem
from rich.style import Style

from ops.secrets import redact

MAX_READ = 1 << 20  # bytes read from one file in one poll; the rest comes with the next poll
MAX_LINE = 64 << 10  # a "line" this long without a newline is given out as it is
FIXED_COLOURS = {"db": "cyan", "api": "magenta", "migrate": "yellow", "dev": "bright_white"}
PALETTE = ("green", "blue", "bright_cyan", "bright_magenta", "bright_blue", "bright_green", "bright_yellow")


@dataclass(frozen=True)
class LogLine:
    """One complete line of a component's log, redacted."""

    component: str
    text: str


@dataclass
class _Tail:
    """Where the follower is in one file: its inode, the offset read to, a partial last line."""

    path: Path
    inode: int | None
    offset: int
    pending: bytes = b""


class LogFollower:
    """Follows `{component: path}` from each file's current end (from 0 for a file created later).

    `poll()` is non-blocking: one `os.stat` per file when nothing changed. A replaced file (new inode,
    as `children.spawn` does: `x.log` -> `x.log.1`) is read to its end through `x.log.1`, then the new
    file from 0; a truncated file is read from 0 again. A last line without its newline is kept until
    the newline arrives. Bytes that are not UTF-8 are replaced.
    """

    def __init__(self, paths: Mapping[str, Path], secrets: Iterable[str] = ()) -> None:
        self.secrets = list(secrets)
        self._tails: dict[str, _Tail] = {}
        for component, path in paths.items():
            self.add(component, path)

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self._tails)

    @property
    def paths(self) -> dict[str, Path]:
        """`{component: path}` of what is followed (a copy)."""
        return {component: tail.path for component, tail in self._tails.items()}

    def add(self, component: str, path: Path, from_start: bool = False) -> None:
        """Follow `path` as `component` from its current end (or from 0); a no-op if already so."""
        current = self._tails.get(component)
        if current is not None and current.path == Path(path):
            return
        try:
            stat = os.stat(path)
        except OSError:
            self._tails[component] = _Tail(Path(path), None, 0)
        else:
            self._tails[component] = _Tail(Path(path), stat.st_ino, 0 if from_start else stat.st_size)

    def remove(self, component: str) -> None:
        """Stop following `component` (a partial last line not yet given out is dropped)."""
        self._tails.pop(component, None)

    def poll(self) -> list[LogLine]:
        """The complete lines written since the last call, file by file."""
        lines: list[LogLine] = []
        for component, tail in self._tails.items():
            lines.extend(LogLine(component, redact(text, self.secrets)) for text in _advance(tail))
        return lines


def _advance(tail: _Tail) -> list[str]:
    """The new complete lines of one file, moving `tail` on."""
    lines: list[str] = []
    try:
        stat = os.stat(tail.path)
    except OSError:  # gone (between a rotation and the new file, or deleted): finish the old one
        if tail.inode is not None:
            lines += _finish(tail)
            tail.inode, tail.offset = None, 0
        return lines
    if tail.inode is None:
        tail.inode, tail.offset = stat.st_ino, 0
    elif stat.st_ino != tail.inode:  # replaced
        lines += _finish(tail)
        tail.inode, tail.offset = stat.st_ino, 0
    elif stat.st_size < tail.offset:  # truncated
        lines += _flush(tail)
        tail.offset = 0
    if stat.st_size > tail.offset:
        lines += _read(tail, tail.path, stat.st_size)
    return lines


def _finish(tail: _Tail) -> list[str]:
    """The rest of a file that was rotated away to `<name>.1`, if it is there, and its partial line."""
    rotated = tail.path.with_name(f"{tail.path.name}.1")
    lines: list[str] = []
    try:
        stat = os.stat(rotated)
    except OSError:
        stat = None
    if stat is not None and stat.st_ino == tail.inode and stat.st_size > tail.offset:
        lines += _read(tail, rotated, stat.st_size, limit=None)
    return lines + _flush(tail)


def _read(tail: _Tail, path: Path, size: int, limit: int | None = MAX_READ) -> list[str]:
    """Read `path` from the tail's offset towards `size` and split off the complete lines."""
    wanted = size - tail.offset if limit is None else min(size - tail.offset, limit)
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_ino != tail.inode:  # replaced since the stat: next poll
                return []
            handle.seek(tail.offset)
            chunk = handle.read(wanted)
    except OSError:
        return []
    tail.offset += len(chunk)
    *complete, tail.pending = (tail.pending + chunk).split(b"\n")
    if len(tail.pending) >= MAX_LINE:
        complete.append(tail.pending)
        tail.pending = b""
    return [_decode(raw) for raw in complete]


def _flush(tail: _Tail) -> list[str]:
    """The partial last line of a file that is finished."""
    pending, tail.pending = tail.pending, b""
    return [_decode(pending)] if pending else []


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").removesuffix("\r")


def follow(follower: LogFollower, stop: Callable[[], bool], poll_s: float = 0.2) -> Iterator[LogLine]:
    """Yield the follower's new lines until `stop()` is true, sleeping `poll_s` when there are none."""
    while not stop():
        lines = follower.poll()
        yield from lines
        if not lines:
            time.sleep(poll_s)


def colour_of(component: str) -> str:
    """A rich colour name for `component`: fixed for db, api, migrate and dev, else stable by name."""
    fixed = FIXED_COLOURS.get(component)
    return fixed if fixed is not None else PALETTE[zlib.crc32(component.encode()) % len(PALETTE)]


def prefix_width(components: Iterable[str], minimum: int = 0) -> int:
    """The name column's width for `components`: the longest name and one space."""
    return max([minimum, *(len(name) + 1 for name in components)])


def prefix(component: str, width: int, colour: bool) -> str:
    """`component` padded to `width`, then `| `; the name in its ANSI colour when `colour`."""
    name = component.ljust(width)
    if not colour:
        return f"{name}| "
    return Style(color=colour_of(component)).render(name, color_system=ColorSystem.STANDARD) + "| "
