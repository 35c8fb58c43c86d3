"""What the parent may import (the third-party libraries) and how the children import the rest.

A module is the project's when its file is under the project directory (the current one) but not
under the interpreter's or a virtualenv's directories (a `.venv` inside the project is not the
project), or when it is the APP's top-level package. The parent learns the other modules from a
probe child that imports the APP and reports `sys.modules`, then imports them itself, so every
child forked later starts with them loaded. Children compile the project's sources afresh: a
same-second, same-size edit cannot be served from a stale `.pyc`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.machinery
import json
import os
import select
import signal
import sys
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

PROBE_TIMEOUT = 120.0  # seconds for the probe child to import the APP


@dataclass(frozen=True)
class Project:
    """The project directory, the APP's top-level package and the directories that are not the project."""

    root: str
    top: str
    outside: tuple[str, ...]

    @classmethod
    def of(cls, app: str, root: Path) -> Project:
        dirs = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
        dirs |= {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
        outside = tuple(sorted(os.path.join(os.path.realpath(d), "") for d in dirs if d))
        return cls(os.path.join(os.path.realpath(root), ""), app.partition(":")[0].split(".")[0], outside)

    def owns_file(self, filename: object) -> bool:
        if not isinstance(filename, str) or not filename:
            return False
        path = os.path.realpath(filename)
        return path.startswith(self.root) and not path.startswith(self.outside)

    def owns(self, name: str, module: ModuleType | None) -> bool:
        """True for the project's modules (and `__main__`): those the parent must never import."""
        if name in ("__main__", "__mp_main__") or name == self.top or name.startswith(self.top + "."):
            return True
        try:
            if self.owns_file(getattr(module, "__file__", None)):
                return True
            return any(self.owns_file(entry) for entry in list(getattr(module, "__path__", None) or []))
        except Exception:  # a lazy or odd module object: leave it to the children
            return True


class _FreshLoader(importlib.machinery.SourceFileLoader):
    """Compiles the source every time: no `.pyc` is read or written for the project's files."""

    def get_code(self, fullname: str) -> CodeType | None:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class _FreshFinder:
    """Finds what the path finder finds, and gives the project's source files `_FreshLoader`."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = PathFinder.find_spec(fullname, path, target)
        if (
            spec is not None
            and type(spec.loader) is importlib.machinery.SourceFileLoader
            and self.project.owns_file(spec.origin)
        ):
            spec.loader = _FreshLoader(fullname, spec.origin or "")
        return spec


def load_app(app: str, project: Project) -> Any:
    """Import `module:attr` (the project's files compiled from source) and return the attribute."""
    if not any(isinstance(finder, _FreshFinder) for finder in sys.meta_path):
        finders: list[Any] = sys.meta_path
        at = finders.index(PathFinder) if PathFinder in finders else len(finders)
        finders.insert(at, _FreshFinder(project))
    importlib.invalidate_caches()
    module_name, _, attr = app.partition(":")
    module = importlib.import_module(module_name)
    return functools.reduce(getattr, attr.split("."), module)


def probe(app: str, project: Project, timeout: float = PROBE_TIMEOUT) -> list[str]:
    """The names of the non-project modules that importing `app` (and loading uvicorn) brings in.

    Learned in a forked child, so the parent imports no project module; [] if the import fails.
    """
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the probe child
        os.close(read_fd)
        _probe_child(app, project, write_fd)
    os.close(write_fd)
    data = _read_all(read_fd, time.monotonic() + timeout)
    os.close(read_fd)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)  # a no-op when it is done; ends a probe stuck past the timeout
    os.waitpid(pid, 0)
    try:
        names = json.loads(data or b"[]")
    except ValueError:
        return []
    return [name for name in names if isinstance(name, str)]


def _probe_child(app: str, project: Project, write_fd: int) -> None:
    code = 0
    try:
        target = load_app(app, project)
        import uvicorn

        uvicorn.Config(target, lifespan="auto", log_level="critical").load()  # the protocol modules
        names = [name for name, module in list(sys.modules.items()) if not project.owns(name, module)]
        data = json.dumps(names).encode()
        while data:
            data = data[os.write(write_fd, data) :]
    except BaseException:
        code = 1  # the first generation will report it, with its traceback
    finally:
        os._exit(code)


def _read_all(fd: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    return b""  # timed out: preload nothing


@dataclass(frozen=True)
class Preloaded:
    """What the parent imported: how many modules, their top-level packages, which names failed."""

    count: int
    packages: list[str]
    failed: list[str]
    seconds: float


def preload(app: str, project: Project) -> Preloaded:
    """Import in the parent the third-party modules the APP needs (those that fail are skipped)."""
    started = time.monotonic()
    before = set(sys.modules)
    failed = []
    for name in probe(app, project):
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except (Exception, SystemExit):  # an alias, a platform-only module, one that refuses: the child's
            failed.append(name)
    added = [name for name in sys.modules if name not in before]
    packages = sorted({name.split(".")[0] for name in added})
    return Preloaded(len(added), packages, failed, round(time.monotonic() - started, 3))
