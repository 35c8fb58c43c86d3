"""`invoke diagnose --bundle` in a project copy, and what the archive holds."""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.project import Project

FIXED = ("diagnosis.json", "diagnosis.txt", "state.json", "steps.json", "versions.txt", "metrics.txt")


@dataclass(frozen=True)
class Written:
    code: int
    path: Path
    members: dict[str, str]  # name inside the bundle's folder -> text
    modes: set[int]
    summary: str  # the stderr line: files, size, time, verdict


def bundle(project: Project, *args: str) -> Written:
    """`invoke diagnose --bundle ARGS`; asserts it printed a path and no traceback, and reads the archive."""
    result = project.invoke("diagnose", "--bundle", *args, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    path = Path(result.stdout.strip())
    assert path.is_absolute() and path.name.endswith(".tar.gz"), result.stdout
    with tarfile.open(path) as archive:
        infos = archive.getmembers()
        folders = {info.name.split("/", 1)[0] for info in infos}
        assert folders == {path.name.removesuffix(".tar.gz")}
        members = {
            info.name.split("/", 1)[1]: archive.extractfile(info).read().decode()  # type: ignore[union-attr]
            for info in infos
        }
    return Written(result.returncode, path, members, {info.mode for info in infos}, result.stderr.strip())


def leaks(written: Written, secrets: list[str]) -> list[str]:
    """The members in which any of `secrets` appears."""
    assert secrets and all(secrets)
    return [name for name, text in written.members.items() if any(secret in text for secret in secrets)]
