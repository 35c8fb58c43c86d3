"""What `invoke dev` watches: exactly the inputs the fingerprints name, and the stack file.

`targets` maps each component to its sources (the API's package, `migrations/versions`, a
process's files); `Watcher` follows them with watchfiles (folders recursively, single files
through their folder), and `Debouncer` groups an editor's burst of writes into one batch.
Files that no component depends on (tests, docs) are never watched, so they do nothing.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ops.fingerprint import SKIPPED_DIRS, SKIPPED_SUFFIXES
from ops.settings import Settings
from ops.stackfile import STACK_FILE, StackFile

STACK = "stack file"  # the pseudo-component whose change re-plans everything


@dataclass(frozen=True)
class Target:
    component: str
    sources: tuple[str, ...]  # relative to the project: files or folders


def targets(settings: Settings, stack: StackFile) -> list[Target]:
    """Each component's sources (as its fingerprint covers them), and the stack file itself."""
    from ops.processes import sources_of

    found = [Target(STACK, (STACK_FILE,))]
    for name, part in stack.components.items():
        if part.kind == "alembic":
            sources = (f"{part.directory}/versions", *part.sources)  # type: ignore[attr-defined]
        elif part.kind == "process":
            sources = sources_of(settings, part)  # type: ignore[arg-type]
        else:
            sources = part.sources
        if sources:
            found.append(Target(name, tuple(sources)))
    return found


def affected(found: Iterable[Target], changed: Iterable[str]) -> dict[str, list[str]]:
    """component -> the changed paths (relative, posix) under its sources."""
    hits: dict[str, list[str]] = {}
    for path in sorted(set(changed)):
        for target in found:
            if any(path == source or path.startswith(source.rstrip("/") + "/") for source in target.sources):
                hits.setdefault(target.component, []).append(path)
    return hits


class Debouncer:
    """Collects changed paths; `batch()` hands them over once no change came for `quiet_s`
    (or `longest_s` after the first, so a file written continuously still gets served)."""

    def __init__(
        self, quiet_s: float = 0.08, longest_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ):
        self.quiet_s, self.longest_s, self._clock = quiet_s, longest_s, clock
        self._paths: set[str] = set()
        self._first = self._last = 0.0

    def add(self, paths: Iterable[str]) -> None:
        paths = set(paths)
        if not paths:
            return
        now = self._clock()
        if not self._paths:
            self._first = now
        self._paths |= paths
        self._last = now

    @property
    def pending(self) -> bool:
        return bool(self._paths)

    def batch(self) -> list[str] | None:
        if not self._paths:
            return None
        now = self._clock()
        if now - self._last < self.quiet_s and now - self._first < self.longest_s:
            return None
        out, self._paths = sorted(self._paths), set()
        return out


class Watcher:
    """watchfiles on the targets' folders (recursive) and on the folders of single-file targets
    (not recursive, only those files), in background threads; `drain()` returns what changed."""

    def __init__(self, project_dir: Path, found: Iterable[Target]) -> None:
        self.project_dir = project_dir.resolve()
        sources = {source for target in found for source in target.sources}
        self._folders = sorted(
            {str(self.project_dir / s) for s in sources if (self.project_dir / s).is_dir()}
        )
        self._files = {str(self.project_dir / s) for s in sources if not (self.project_dir / s).is_dir()}
        self._changes: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Watcher:
        if self._folders:
            self._spawn(self._folders, recursive=True, accept=_interesting)
        parents = sorted({str(Path(f).parent) for f in self._files if Path(f).parent.is_dir()})
        if parents:
            self._spawn(parents, recursive=False, accept=lambda path: path in self._files)
        return self

    def wait(self, timeout: float) -> list[str]:
        """What changed, waiting up to `timeout` for the first change (then not at all)."""
        try:
            first = self._changes.get(timeout=timeout)
        except queue.Empty:
            return []
        return [first, *self.drain()]

    def drain(self) -> list[str]:
        paths = []
        while True:
            try:
                paths.append(self._changes.get_nowait())
            except queue.Empty:
                return paths

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)

    def _spawn(self, paths: list[str], recursive: bool, accept: Callable[[str], bool]) -> None:
        thread = threading.Thread(target=self._run, args=(paths, recursive, accept), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _run(self, paths: list[str], recursive: bool, accept: Callable[[str], bool]) -> None:
        from watchfiles import watch

        for changes in watch(
            *paths,
            watch_filter=lambda _change, path: accept(path),
            debounce=50,
            step=20,
            stop_event=self._stop,
            recursive=recursive,
            raise_interrupt=False,
            ignore_permission_denied=True,
        ):
            for _change, path in changes:
                self._changes.put(Path(path).relative_to(self.project_dir).as_posix())


def _interesting(path: str) -> bool:
    parts = Path(path).parts
    return not any(part in SKIPPED_DIRS for part in parts) and not path.endswith(SKIPPED_SUFFIXES)
