"""Section 5: resident memory of the API process and of PostgreSQL, from /proc.

RSS is VmRSS of /proc/<pid>/status. Summed over PostgreSQL's processes it counts shared
buffers once per process that touched them, so PSS (/proc/<pid>/smaps_rollup, shared
pages split between their users) is given beside it. Docker's processes are found by their
host pids (`container.top()`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docker.errors import DockerException
from requests.exceptions import RequestException

PidsOf = Callable[[], list[int]]


def _field_kb(path: Path, name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0  # the process has gone


def rss_kb(pid: int) -> int:
    return _field_kb(Path(f"/proc/{pid}/status"), "VmRSS")


def pss_kb(pid: int) -> int:
    return _field_kb(Path(f"/proc/{pid}/smaps_rollup"), "Pss")


def children(parent: int) -> list[int]:
    """The direct children of `parent` (PostgreSQL's backends and workers under the postmaster)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def postmaster_and_children(postmaster: int) -> PidsOf:
    return lambda: [postmaster, *children(postmaster)]


def container_pids(container: Any) -> PidsOf:
    def pids() -> list[int]:
        try:
            top = container.top()
        except (DockerException, RequestException):
            return []  # the engine stopped answering: nothing to count
        column = top["Titles"].index("PID")
        return [int(row[column]) for row in top["Processes"]]

    return pids


def snapshot(api_pid: int, postgres: PidsOf) -> dict[str, Any]:
    """API RSS, PostgreSQL RSS and PSS summed over its processes (MB), and how many there are."""
    pids = postgres()
    return {
        "api_rss_mb": round(rss_kb(api_pid) / 1024, 1),
        "postgres_rss_mb": round(sum(rss_kb(pid) for pid in pids) / 1024, 1),
        "postgres_pss_mb": round(sum(pss_kb(pid) for pid in pids) / 1024, 1),
        "postgres_processes": len(pids),
    }


class PeakSampler:
    """Samples `snapshot` every `interval` s in a thread; `peak` is each figure's maximum."""

    def __init__(self, api_pid: int, postgres: PidsOf, interval: float = 0.25) -> None:
        self._sample = lambda: snapshot(api_pid, postgres)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak: dict[str, Any] = {}

    def _run(self) -> None:
        while True:
            for key, value in self._sample().items():
                self.peak[key] = max(value, self.peak.get(key, value))
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
