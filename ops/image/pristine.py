"""The pristine cluster: made at build time by the wheel's own `initdb`, copied by the entrypoint.

The wheel's initdb runs on the host as an unprivileged user, with exactly the options the
entrypoint would pass to initdb in the container (and a placeholder database); the cluster goes
into the image at `/usr/share/homer-ops/pristine-cluster` (uid 999, 0700), described by
`pristine-cluster.env` beside it. Its free-space-map and visibility-map forks (`*_fsm`, `*_vm`)
are left out: PostgreSQL creates them when it first needs them (a relation that was never
vacuumed has none), and they are a quarter of its ~1,300 files, whose creation is what the copy
costs. On a first start whose settings match it, the entrypoint copies it into PGDATA and
applies POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB in a single-user backend instead of
running initdb (see the entrypoint). Every cluster copied from it shares its system identifier
and SCRAM mock-authentication nonce (harmless for independent clusters: only physical
replication and backup catalogues tell clusters apart by the identifier). Where initdb cannot
run on the host the image is built without it, and the entrypoint runs initdb as before.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ops.image.wheel import Wheel
from ops.platform import run_bounded

if TYPE_CHECKING:
    from ops.platform import Account

LOCALE_DIR = Path("/usr/lib/locale/C.utf8")
# initdb imports the system collations from `locale -a`; glibc's `locale` program is not copied.
LOCALE_SHIM = f"""\
#!/bin/sh
# Stand-in for glibc's `locale`: the locales this image has, for initdb's collation import.
[ "${{1:-}}" = -a ] || {{ echo "LANG=${{LANG:-}}"; exit 0; }}
echo C
echo POSIX
[ ! -d {LOCALE_DIR} ] || echo C.utf8
"""

# The manifest is sourced by the entrypoint; its names must match what the entrypoint reads.
PRISTINE_ROOT = PurePosixPath("/usr/share/homer-ops")
PRISTINE_DIR = PRISTINE_ROOT / "pristine-cluster"
PRISTINE_MANIFEST = PRISTINE_ROOT / "pristine-cluster.env"
PRISTINE_SUPERUSER = "postgres"  # initdb's bootstrap superuser (OID 10), renamed to POSTGRES_USER
PRISTINE_DATABASE = "homer_ops_pristine"  # renamed to POSTGRES_DB (dropped when that is `postgres`)
# initdb's fixed database OIDs (since PostgreSQL 15): template1, template0, postgres. The entrypoint's
# single-user backend connects to postgres, so that directory is copied before it starts.
INITDB_DATABASE_OIDS = {"template1": "1", "template0": "4", "postgres": "5"}
PRISTINE_AUTH_HOST = "scram-sha-256"  # the entrypoint's default POSTGRES_HOST_AUTH_METHOD
PRISTINE_TIMEOUT_S = 120
# Optional relation forks, created by PostgreSQL when first needed: not shipped (see above).
PRISTINE_DROPPED_FORKS = ("_fsm", "_vm")
# What initdb sees in the container: no TZ there makes it choose UTC; `locale -a` is the shim.
PRISTINE_TZ = "UTC"


class NoPristine(Exception):
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


def make_pristine_cluster(wheel: Wheel, work: Path) -> Path:
    """The wheel's initdb, run on the host as an unprivileged user, into `work/cluster`; then the
    placeholder database in a single-user backend. The cluster is shut down cleanly.

    As root it runs as the harness's service user (ops.platform, created if missing), otherwise as
    the caller. NoPristine says why it could not be made.
    """
    account = _initdb_account()
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
        _run_as(account, argv, stdin, work, env)
    _check_and_trim(cluster)
    return cluster


def _initdb_account() -> Account | None:
    """The unprivileged user initdb runs as: the service user as root, None (the caller) otherwise."""
    from ops.errors import OpsError
    from ops.platform import service_account

    try:
        return service_account()
    except OpsError as exc:
        raise NoPristine(f"no unprivileged user to run initdb as ({exc.message})") from None


def _run_as(
    account: Account | None, argv: list[str], stdin: str | None, work: Path, env: dict[str, str]
) -> None:
    """One step of making the cluster, as `account`; NoPristine when it cannot run or fails."""
    try:
        done = run_bounded(argv, account, PRISTINE_TIMEOUT_S, env, cwd=work, stdin=stdin)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NoPristine(f"cannot run {Path(argv[0]).name}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise NoPristine(f"{Path(argv[0]).name} failed with exit code {done.returncode}: {last}")


def _check_and_trim(cluster: Path) -> None:
    """NoPristine unless initdb made what the entrypoint expects; the optional forks removed."""
    if not (cluster / "PG_VERSION").is_file():
        raise NoPristine("initdb made no PG_VERSION")
    databases = {path.name for path in (cluster / "base").iterdir()}
    if not set(INITDB_DATABASE_OIDS.values()) < databases or len(databases) != 4:
        raise NoPristine(f"unexpected database directories {sorted(databases)} in base/")
    for fork in (p for p in (cluster / "base").rglob("*") if p.name.endswith(PRISTINE_DROPPED_FORKS)):
        fork.unlink()
    for fork in (p for p in (cluster / "global").glob("*") if p.name.endswith(PRISTINE_DROPPED_FORKS)):
        fork.unlink()
    # The entrypoint copies it under umask 077, which gives exactly these modes.
    odd = [p for p in cluster.rglob("*") if p.stat().st_mode & 0o7777 != (0o700 if p.is_dir() else 0o600)]
    if odd or (cluster.stat().st_mode & 0o7777) != 0o700:
        raise NoPristine(f"initdb made {odd[0] if odd else cluster} with a mode other than 0600/0700")


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
    header = "# Written by ops/image: the pristine cluster beside this file and how initdb made it."
    return "\n".join([header, *(f"{key}={shlex.quote(value)}" for key, value in values.items())]) + "\n"
