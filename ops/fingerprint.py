"""Fingerprints of a component's inputs: its declaration, the settings it uses, its source files.

A fingerprint is a digest plus the per-file hashes it was made from, so a plan can name the
file that changed ("app/routes.py changed since pid 4242 started"). Files are hashed by
content; a file whose size and mtime match what was recorded keeps its recorded hash, as
git's index does, so a warm `up` reads no unchanged file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKIPPED_DIRS = frozenset(
    {"__pycache__", ".git", ".ops", ".venv", "node_modules", ".mypy_cache", ".ruff_cache"}
)
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


@dataclass(frozen=True)
class FileStamp:
    """A file's content hash, and the size and mtime it had when hashed."""

    sha256: str
    size: int
    mtime_ns: int

    def as_list(self) -> list[Any]:
        return [self.sha256, self.size, self.mtime_ns]

    @classmethod
    def from_list(cls, value: Any) -> FileStamp | None:
        try:
            sha, size, mtime = value
            return cls(str(sha), int(size), int(mtime))
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Fingerprint:
    digest: str  # of everything
    declared: str  # of the declaration and settings alone
    files: dict[str, FileStamp] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        files = {name: stamp.as_list() for name, stamp in self.files.items()}
        return {"digest": self.digest, "declared": self.declared, "files": files}

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> Fingerprint | None:
        if not record or not isinstance(record.get("digest"), str):
            return None
        files = {name: FileStamp.from_list(value) for name, value in (record.get("files") or {}).items()}
        kept = {name: stamp for name, stamp in files.items() if stamp}
        return cls(record["digest"], str(record.get("declared", "")), kept)


def source_files(project_dir: Path, sources: Iterable[str]) -> Iterator[Path]:
    """Every file under the given files and folders, sorted, skipping caches and editor droppings."""
    for source in sources:
        root = project_dir / source
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and not _skipped(path.relative_to(project_dir)):
                    yield path


def _skipped(relative: Path) -> bool:
    return any(part in SKIPPED_DIRS for part in relative.parts) or relative.name.endswith(SKIPPED_SUFFIXES)


def take(
    project_dir: Path,
    declaration: Mapping[str, Any],
    sources: Iterable[str],
    previous: Fingerprint | None = None,
) -> Fingerprint:
    """The fingerprint of a component now. `declaration` holds its part of the stack file and the
    resolved settings it uses; `previous` lends the hashes of files that did not change."""
    known = previous.files if previous else {}
    files: dict[str, FileStamp] = {}
    for path in source_files(project_dir, sources):
        name = path.relative_to(project_dir).as_posix()
        stat = path.stat()
        old = known.get(name)
        if old and (old.size, old.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            files[name] = old
        else:
            files[name] = FileStamp(_hash_file(path), stat.st_size, stat.st_mtime_ns)
    declared = hashlib.sha256(json.dumps(declaration, sort_keys=True, default=str).encode()).hexdigest()[:16]
    digest = hashlib.sha256(declared.encode())
    for name, stamp in files.items():
        digest.update(f"\0{name}\0{stamp.sha256}".encode())
    return Fingerprint(digest.hexdigest()[:16], declared, files)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def what_changed(before: Fingerprint | None, now: Fingerprint) -> str | None:
    """Why `now` differs from `before`, in a few words naming files; None when they are the same."""
    if before is None:
        return "no fingerprint recorded"
    if before.digest == now.digest:
        return None
    changed = sorted(
        name
        for name in now.files
        if name in before.files and before.files[name].sha256 != now.files[name].sha256
    )
    added = sorted(set(now.files) - set(before.files))
    removed = sorted(set(before.files) - set(now.files))
    parts = []
    for label, names in (("changed", changed), ("added", added), ("removed", removed)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            parts.append(f"{shown} {label}")
    if before.declared != now.declared:
        parts.append("its declaration or settings changed")
    return "; ".join(parts)
