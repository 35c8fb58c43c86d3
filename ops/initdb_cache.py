"""A fresh `initdb` cluster per wheel version, unpacked into new data directories.

`initialise` fills an empty data directory from a template kept in the per-user cache,
`$XDG_CACHE_HOME/homer-ops/initdb/<wheel version>-<hash of initdb's options>-uid<runner's uid>.pack`
(`~/.cache` by default): the cluster as one file (`ops.cluster_pack`), read in one go and
unpacked by a child interpreter. On a miss it runs initdb into the data directory itself, then
saves that cluster as the template, untouched but for the caller's `Preparation` (the embedded
backend's spare database, `ops.backends.spare_database`, named in the key): packed into a
temporary file beside it, flushed to disk and linked into place only once complete. Two
processes saving at once cannot corrupt it (the loser's link fails and it discards its copy),
and a killed build leaves only a temporary file that is never read (and is removed once
stale). A template that is not a whole pack, or holds no PG_VERSION or pg_control, or another
major version than the binaries', is discarded and rebuilt. The cache only saves time: when it
cannot be read or written, initdb runs as before.

This process's child does the unpacking, as root too (it gives the files to the runner), so the
runner needs no access to the cache and no home directory is opened up for it.

Every cluster copied from one template shares its system identifier (`pg_controldata`'s
"Database system identifier"). That is harmless for independent clusters; only tools that
tell clusters apart by it care (pgBackRest-style backup catalogues), and the harness uses none
of them between its clusters. Physical replication needs the same identifier anyway: the test
support's primary is a copy and its standbys are base backups of it (`tests/support/replication.py`).

The key does not cover initdb's environment: `run` must give initdb the same one each time
(the backend's `_run` sets LC_ALL and TZ; TZ ends up in postgresql.conf). Options whose effect
is not in the arguments themselves (`--pwfile`, `--pwprompt`, `--waldir`) are never cached.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ops import cluster_pack
from ops.errors import DatabaseError
from ops.image.wheel import WHEEL_DISTRIBUTION as WHEEL
from ops.platform import Account, give_to

Run = Callable[[list[str], Account | None, float], subprocess.CompletedProcess[str]]
# Moves an already unpacked copy of the template into the data directory, if it has one that fits
# (data_dir, template, runner); True if it did (`ops.head_start.claim`).
Adopt = Callable[[Path, Path, Account | None], bool]

INITDB_TIMEOUT_S = 120.0
STALE_AFTER_S = 600.0  # a build takes well under a second; older leftovers are a killed one's
SUFFIX = ".pack"
_UNCACHEABLE = ("--pwfile", "--pwprompt", "-W", "--waldir")  # and -X<dir>
_NO_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK)


@dataclass(frozen=True)
class Preparation:
    """What is done to a fresh cluster before it is saved as the template (`run`), and the name of
    that work, which is part of the template's key: a template holds what its key says."""

    key: str
    run: Callable[[], None]


class _NoCache(Exception):
    """Why no template can be used or saved for this call."""


def cache_root() -> Path:
    """The directory holding the templates (a relative XDG_CACHE_HOME is ignored, as XDG says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "homer-ops" / "initdb"


def template_path(initdb_args: Sequence[str], runner: Account | None, preparation: str = "") -> Path:
    """Where the template for these initdb options, this runner and this preparation lives (needs
    the wheel's metadata)."""
    import importlib.metadata  # here, not at import: `up` on a running stack never needs it

    version = importlib.metadata.version(WHEEL)
    keyed = [*initdb_args, *([preparation] if preparation else [])]
    digest = hashlib.sha256("\0".join(keyed).encode()).hexdigest()[:12]
    uid = runner.uid if runner is not None else os.geteuid()
    return cache_root() / (re.sub(r"[^A-Za-z0-9._-]", "_", f"{version}-{digest}-uid{uid}") + SUFFIX)


def initialise(
    data_dir: Path,
    bin_dir: Path,
    runner: Account | None,
    initdb_args: Sequence[str],
    run: Run,
    preparation: Preparation | None = None,
    adopt: Adopt | None = None,
) -> str:
    """Make `data_dir` (missing or empty) a new cluster owned by `runner`, mode 0700; say how.

    `initdb_args` are initdb's options without `-D`; `run(argv, runner, timeout)` runs a binary
    as `runner`. `preparation` runs on a fresh cluster before it is saved as the template (only
    then: a cluster that no template will keep is left as initdb made it). `adopt` is asked first
    for a copy of a usable template unpacked ahead. The runner must be able to reach `data_dir`
    (initdb runs there on a miss).
    DatabaseError when `data_dir` is not empty or initdb fails.
    """
    _prepare(data_dir, runner)
    began = time.perf_counter()
    try:
        template, major = _slot(bin_dir, initdb_args, runner, preparation.key if preparation else "")
    except _NoCache as why:
        _initdb(data_dir, bin_dir, runner, initdb_args, run)
        return f"initialised {data_dir} ({time.perf_counter() - began:.2f} s); no initdb template: {why}"
    if not _usable(template, major):
        _initdb(data_dir, bin_dir, runner, initdb_args, run)
        if preparation is not None:
            preparation.run()
        done = f"initialised {data_dir} ({time.perf_counter() - began:.2f} s)"
        return done + _save(data_dir, template, major)
    if adopt is not None and adopt(data_dir, template, runner):
        return f"copied the initdb template (unpacked ahead; {time.perf_counter() - began:.2f} s)"
    try:
        uid, gid = (runner.uid, runner.gid) if runner is not None else (-1, -1)
        cluster_pack.unpack_in_child(template, data_dir, uid, gid)
    except OSError as error:  # the template is left as it is: the fault may be on our side
        _empty(data_dir)
        _initdb(data_dir, bin_dir, runner, initdb_args, run)
        took = time.perf_counter() - began
        return f"initialised {data_dir} ({took:.2f} s); the initdb template could not be copied ({error})"
    except BaseException:
        _empty(data_dir)  # interrupted: leave no half copy behind
        raise
    return f"copied the initdb template ({time.perf_counter() - began:.2f} s)"


def _prepare(data_dir: Path, runner: Account | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if any(data_dir.iterdir()):
        raise DatabaseError(
            f"data directory {data_dir} is not empty but holds no cluster",
            f"remove {data_dir} if nothing in it is needed, then run again",
        )
    data_dir.chmod(0o700)
    give_to(runner, data_dir)


def _slot(
    bin_dir: Path, initdb_args: Sequence[str], runner: Account | None, preparation: str
) -> tuple[Path, str]:
    """The template's path and the binaries' major version, or _NoCache(reason)."""
    import importlib.metadata

    for arg in initdb_args:
        name = arg.split("=", 1)[0]
        if name == "--pgdata" or arg.startswith("-D"):
            raise ValueError("initdb_args must not name the data directory")
        if name in _UNCACHEABLE or arg.startswith("-X"):
            raise _NoCache(f"{name[:2] if arg.startswith('-X') else name} is not cached")
    major = _binaries_major(bin_dir)
    if major is None:
        raise _NoCache(f"no postgres.bki beside {bin_dir} names the major version")
    try:
        return template_path(initdb_args, runner, preparation), major
    except importlib.metadata.PackageNotFoundError:
        raise _NoCache(f"the {WHEEL} wheel's version is unknown") from None
    except (RuntimeError, KeyError):  # Path.home() with neither HOME nor a passwd entry
        raise _NoCache("no home directory for the cache") from None


def _binaries_major(bin_dir: Path) -> str | None:
    """The major version in the first line of postgres.bki (`# PostgreSQL 18`), which initdb checks too."""
    for bki in (
        bin_dir.parent / "share" / "postgres.bki",
        bin_dir.parent / "share" / "postgresql" / "postgres.bki",
    ):
        try:
            with bki.open(encoding="ascii", errors="replace") as handle:
                words = handle.readline().split()
        except OSError:
            continue
        if len(words) == 3 and words[:2] == ["#", "PostgreSQL"]:
            return words[2]
    return None


def _usable(template: Path, major: str) -> bool:
    """A whole pack of a cluster of this major version."""
    try:
        manifest = cluster_pack.read_manifest(template)
        version = cluster_pack.member(template, manifest, "PG_VERSION")
    except OSError:
        return False
    names = {entry[1] for entry in manifest["entries"]}
    return version is not None and version.strip() == major.encode() and "global/pg_control" in names


def _initdb(
    data_dir: Path, bin_dir: Path, runner: Account | None, initdb_args: Sequence[str], run: Run
) -> None:
    result = run([str(bin_dir / "initdb"), "-D", str(data_dir), *initdb_args], runner, INITDB_TIMEOUT_S)
    if result.returncode != 0:
        raise DatabaseError(
            f"initdb failed with exit code {result.returncode}",
            f"data directory {data_dir}",
            evidence=(result.stdout + result.stderr)[-4000:],
        )


def _save(data_dir: Path, template: Path, major: str) -> str:
    """Pack the fresh cluster in `data_dir` into `template`, atomically; the detail to append."""
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        _sweep(template.parent)
        descriptor, name = tempfile.mkstemp(prefix=f".{template.name}.tmp-", dir=template.parent)
        os.close(descriptor)
        staging = Path(name)
        try:
            cluster_pack.pack(data_dir, staging)  # flushed to disk: the template lasts
            for _ in range(2):
                try:
                    _publish(staging, template)
                except FileExistsError:
                    if _usable(template, major):
                        return "; another process saved the initdb template first"
                    _discard(template)
                else:
                    with contextlib.suppress(OSError):  # saved either way; this only makes it durable
                        _fsync(template.parent)
                    return " and saved it as the initdb template"
            return "; the initdb template was not saved (a broken one kept reappearing)"
        finally:
            staging.unlink(missing_ok=True)
    except OSError as error:
        return f"; the initdb template was not saved ({error})"


def _publish(staging: Path, template: Path) -> None:
    """Give the complete `staging` the template's name unless one is there (FileExistsError): a
    hard link, which never replaces one; a rename where the file system has no hard links."""
    try:
        os.link(staging, template)
    except OSError as error:
        if error.errno not in _NO_LINKS:
            raise
        if template.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(template)) from None
        os.replace(staging, template)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _discard(path: Path) -> None:
    """Move a broken template aside (one rename, so nobody copies it half-deleted), then delete it."""
    aside = path.with_name(f".{path.name}.old-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another process discarded it first
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)


def _sweep(directory: Path) -> None:
    """Delete what killed builds and discards left behind (`.<key>.tmp-*`, `.<key>.old-*`) once stale."""
    cutoff = time.time() - STALE_AFTER_S
    for leftover in [*directory.glob(".*.tmp-*"), *directory.glob(".*.old-*")]:
        try:
            if leftover.lstat().st_mtime >= cutoff:
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)  # an older release's directory template
            else:
                leftover.unlink()
        except OSError:
            continue


def _empty(data_dir: Path) -> None:
    for child in data_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
