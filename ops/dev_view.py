"""What `invoke dev` shows: a live table and log tail on a terminal, plain lines anywhere else."""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Protocol

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ops.logmux import LogLine, colour_of, prefix, prefix_width
from ops.logview import readable
from ops.settings import COMPONENTS

DEV = "dev"  # the prefix of the view's own event lines
DEFAULT_WIDTH = prefix_width((*COMPONENTS, DEV))
NOT_RUNNING = frozenset({"failed", "crashed", "stopped"})
STATUS_STYLES = {
    "healthy": "green",
    "degraded": "yellow",  # the API with some of its workers missing
    "starting": "yellow",
    "restarting": "yellow",
    "failed": "red",
    "crashed": "red",
    "stopped": "dim",
}
ALERT_LINES = 12  # the last lines of an alert's text that the live view shows
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")


@dataclass(frozen=True)
class ComponentRow:
    """One component as the view shows it."""

    name: str
    status: str  # starting, healthy, degraded, restarting, failed, stopped, crashed
    address: str = ""  # "127.0.0.1:8000", or ""
    process: str = ""  # "pid 4242", or a container's name
    started_at: float | None = None  # unix seconds
    restarts: int = 0
    health: str = ""  # the last health line: "GET /health 200", "SELECT 1 ok"
    note: str = ""  # "restarted in 0.21 s (app/routes.py)"


def format_duration(seconds: float) -> str:
    """`12 s`, `3 min 4 s`, `2 h 5 min` (a zero last unit left out)."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def uptime(row: ComponentRow, now: float) -> str:
    """How long `row` has run at `now`, or `—` when it does not run."""
    if row.started_at is None or row.status in NOT_RUNNING:
        return "—"
    return format_duration(now - row.started_at)


def render_table(rows: Iterable[ComponentRow], now: float) -> Table:
    """One line per component: name, coloured status, address, process, uptime, restarts, health, note.

    On a narrow terminal the health and note cells give way (cut with …)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("status", no_wrap=True)
    table.add_column("address", no_wrap=True)
    table.add_column("process", no_wrap=True)
    table.add_column("uptime", no_wrap=True, justify="right")
    table.add_column("restarts", no_wrap=True, justify="right")
    table.add_column("health")  # the two that give way
    table.add_column("note")
    for row in rows:
        table.add_row(
            row.name,
            Text(row.status, style=STATUS_STYLES.get(row.status, "")),
            row.address,
            row.process,
            uptime(row, now),
            str(row.restarts),
            _one_line(row.health),
            _one_line(row.note),
        )
    return table


def _one_line(text: str) -> Text:
    return Text(text, no_wrap=True, overflow="ellipsis")


def strip_escapes(text: str) -> str:
    """`text` without ANSI escape sequences (a child's colours, cursor moves)."""
    return _ESCAPES.sub("", text)


def shown(line: LogLine, components_filter: set[str] | None) -> bool:
    """Whether the `-c` filter lets `line` through (the view's own lines always pass)."""
    return components_filter is None or line.component in components_filter or line.component == DEV


class View(Protocol):
    """What `invoke dev` talks to; LiveView and PlainView both are one."""

    def update(self, rows: list[ComponentRow]) -> None: ...
    def log(self, lines: list[LogLine]) -> None: ...
    def alert(self, title: str, text: str | None) -> None: ...
    def say(self, text: str) -> None: ...
    def __enter__(self) -> View: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class LiveView:
    """A terminal: the table, an alert panel when one is set, then the last log lines, redrawn 4/s."""

    def __init__(
        self,
        console: Console | None = None,
        components_filter: set[str] | None = None,
        max_lines: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.console = console if console is not None else Console()
        self.components_filter = components_filter
        self.max_lines = max_lines
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: list[ComponentRow] = []
        self._alert: tuple[str, str] | None = None
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self._live: Live | None = None

    def update(self, rows: list[ComponentRow]) -> None:
        with self._lock:
            self._rows = list(rows)

    def log(self, lines: list[LogLine]) -> None:
        with self._lock:
            self._lines.extend(line for line in lines if shown(line, self.components_filter))

    def alert(self, title: str, text: str | None) -> None:
        """Show `text` in a red panel titled `title`; None clears it."""
        with self._lock:
            self._alert = None if text is None else (title, text)

    def say(self, text: str) -> None:
        self.log([LogLine(DEV, text)])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with self._lock:
            rows, alert, lines = list(self._rows), self._alert, list(self._lines)
        parts: list[Table | Panel] = [render_table(rows, self._clock())]
        if alert is not None:
            title, text = alert
            body = "\n".join(strip_escapes(text).rstrip("\n").splitlines()[-ALERT_LINES:])
            parts.append(Panel(Text(body, style="red"), title=title, border_style="red"))
        measure = options.update(height=None)
        used = sum(len(console.render_lines(part, measure, pad=False)) for part in parts)
        room = max(3, min(self.max_lines, options.size.height - used - 1))
        width = prefix_width((line.component for line in lines), DEFAULT_WIDTH)
        yield from parts
        yield Group(*(_log_text(line, width) for line in lines[-room:]))

    def __enter__(self) -> LiveView:
        self._live = Live(
            self,
            console=self.console,
            refresh_per_second=4,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        try:
            self._live.start(refresh=True)
        except BaseException:
            self.console.show_cursor(True)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._live is not None:
                self._live.stop()
        finally:
            self._live = None
            self.console.show_cursor(True)


def _log_text(line: LogLine, width: int) -> Text:
    """One row: the component, then the line; the API's JSON lines made readable as `invoke logs`
    shows them on a terminal (a traceback's first line only: the alert panel shows a crash whole)."""
    shown = readable(line.text).split("\n", 1)[0]
    text = Text.assemble((line.component.ljust(width), colour_of(line.component)), "| ", strip_escapes(shown))
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


class PlainView:
    """No terminal (CI, a pipe): plain prefixed lines, a status line only when something changed."""

    def __init__(self, stream: IO[str], components_filter: set[str] | None = None) -> None:
        self.stream = stream
        self.components_filter = components_filter
        self.width = DEFAULT_WIDTH
        self._seen: dict[str, tuple[str, str, str]] = {}
        self._alert: tuple[str, str] | None = None

    def update(self, rows: list[ComponentRow]) -> None:
        self.width = prefix_width((row.name for row in rows), self.width)
        for row in rows:
            key = (row.status, row.process, row.note)
            if self._seen.get(row.name) != key:
                self._seen[row.name] = key
                self._write(DEV, status_line(row))

    def log(self, lines: list[LogLine]) -> None:
        for line in lines:
            if shown(line, self.components_filter):
                self._write(line.component, line.text)

    def alert(self, title: str, text: str | None) -> None:
        """Print the alert once (title, then its lines indented); None prints that it is cleared."""
        new = None if text is None else (title, text)
        if new == self._alert:
            return
        previous, self._alert = self._alert, new
        if new is None:
            if previous is not None:
                self._write(DEV, f"{title or previous[0]}: cleared")
            return
        self._write(DEV, f"! {title}")
        for line in new[1].rstrip("\n").splitlines():
            self._write(DEV, f"  {line}")

    def say(self, text: str) -> None:
        self._write(DEV, text)

    def _write(self, component: str, text: str) -> None:
        self.width = max(self.width, len(component) + 1)
        self.stream.write(prefix(component, self.width, colour=False) + strip_escapes(text) + "\n")
        self.stream.flush()

    def __enter__(self) -> PlainView:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stream.flush()


def status_line(row: ComponentRow) -> str:
    """`api: healthy (pid 4242, 127.0.0.1:8000); restarted in 0.21 s (app/routes.py)`."""
    details = ", ".join(part for part in (row.process, row.address) if part)
    line = f"{row.name}: {row.status}" + (f" ({details})" if details else "")
    return line + (f"; {row.note}" if row.note else "")


def make_view(
    stream: IO[str],
    components_filter: set[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> LiveView | PlainView:
    """A LiveView on a terminal (TERM not "dumb"), else a PlainView; `components_filter` (from
    `-c NAME`) narrows the log lines shown, never the table."""
    env = os.environ if env is None else env
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty() and env.get("TERM") != "dumb":
        return LiveView(Console(file=stream), components_filter)
    return PlainView(stream, components_filter)
