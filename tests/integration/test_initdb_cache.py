"""The initdb template cache against the wheel's real initdb, pg_ctl and postgres.

Every test has its own XDG_CACHE_HOME, so the real cache is never read or written. initdb runs
through the embedded backend's own `_run`; the servers started here are started and stopped by
these tests with plain pg_ctl (no harness marks), listen on a Unix socket only, and are stopped
before each test ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from ops import cluster_pack, initdb_cache
from ops.backends.embedded import INITDB_ARGS, pg_bin_dir
from ops.platform import Account, allow_traverse, give_to, run_as, service_account
from tests.support.paths import PROJECT_DIR
from tests.support.stacks import backend_run

ARGS = INITDB_ARGS  # what EmbeddedBackend._initdb passes after `-D <data dir>`

# One initialise call in a process of its own: prints "ready", waits for a line on stdin, then
# prints the detail. Started twice at once for the race, or killed midway for the half-built case.
WORKER = """
import sys
from pathlib import Path
from ops import cluster_pack, initdb_cache
from ops.backends.embedded import INITDB_ARGS as ARGS, pg_bin_dir
from ops.platform import service_account
from tests.support.stacks import backend_run
run, bin_dir, runner = backend_run(Path(sys.argv[2])), pg_bin_dir(), service_account()
print("ready", flush=True)
sys.stdin.readline()
print(initdb_cache.initialise(Path(sys.argv[1]), bin_dir, runner, ARGS, run), flush=True)
"""


@pytest.fixture(autouse=True)
def cache(own_initdb_cache: Path) -> Path:
    """A cache of the test's own, for every test and the workers it starts (never the real one)."""
    return own_initdb_cache


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """Where the data directories go: reachable by the runner, as the backend makes its own."""
    directory = tmp_path / "work"
    directory.mkdir()
    allow_traverse(directory)
    return directory


@pytest.fixture
def runner() -> Account | None:
    return service_account()


@pytest.fixture
def make(work: Path, runner: Account | None, tmp_path: Path):
    """make(name) -> (data dir, detail): one initialise call, as the backend would make it."""
    run, bin_dir = backend_run(tmp_path / "state"), pg_bin_dir()

    def make(name: str, args: list[str] = ARGS) -> tuple[Path, str]:
        assert initdb_cache.cache_root().is_relative_to(tmp_path)  # never the real cache
        data_dir = work / name
        data_dir.mkdir(mode=0o700)
        give_to(runner, data_dir)
        return data_dir, initdb_cache.initialise(data_dir, bin_dir, runner, args, run)

    return make


def template(runner: Account | None) -> Path:
    return initdb_cache.template_path(ARGS, runner)


def packed_version(pack: Path) -> str:
    """The PG_VERSION inside a template."""
    version = cluster_pack.member(pack, cluster_pack.read_manifest(pack), "PG_VERSION")
    assert version is not None, f"{pack} holds no PG_VERSION"
    return version.decode().strip()


def contents(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """{relative path: (mode, bytes or None for a directory)} of everything under root."""
    return {
        str(path.relative_to(root)): (path.lstat().st_mode, None if path.is_dir() else path.read_bytes())
        for path in root.rglob("*")
    }


def stamp(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns, info.st_size


def leftovers(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob(".*.tmp-*")) + sorted(cache_dir.glob(".*.old-*"))


def pg_ctl(data_dir: Path, runner: Account | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    return subprocess.run(
        [str(pg_bin_dir() / "pg_ctl"), "-D", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env=env,
        check=False,
        **run_as(runner),
    )


@contextmanager
def server(data_dir: Path, runner: Account | None) -> Iterator[psycopg.Connection]:
    """Start the cluster (`pg_ctl start -w`, as the runner; Unix socket only) and connect as postgres."""
    socket_dir, log = data_dir.with_name(f"{data_dir.name}.sock"), data_dir.with_name(f"{data_dir.name}.log")
    socket_dir.mkdir(mode=0o700, exist_ok=True)
    log.touch()
    give_to(runner, socket_dir, log)
    options = f"-c listen_addresses='' -k {socket_dir} -p 5432"
    started = pg_ctl(data_dir, runner, "start", "-w", "-t", "30", "-l", str(log), "-o", options)
    try:
        assert started.returncode == 0, started.stderr + log.read_text()
        with psycopg.connect(host=str(socket_dir), port=5432, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            yield conn
    finally:  # also after a start that timed out with the server up: leave none running
        stopped = pg_ctl(data_dir, runner, "stop", "-m", "fast", "-w", "-t", "30")
    assert stopped.returncode == 0, stopped.stderr


def answers(data_dir: Path, runner: Account | None) -> bool:
    with server(data_dir, runner) as conn:
        row = conn.execute("SELECT 1, current_setting('data_directory')").fetchone()
    return row == (1, str(data_dir))


def owner_uid(runner: Account | None) -> int:
    return runner.uid if runner is not None else os.geteuid()


def tree(root: Path) -> dict[str, int]:
    """{relative path: mode} of everything under root."""
    return {str(path.relative_to(root)): path.lstat().st_mode for path in root.rglob("*")}


def spawn_worker(data_dir: Path, state_dir: Path) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(data_dir), str(state_dir)],
        cwd=PROJECT_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready", worker.stderr.read() if worker.stderr else ""
    return worker


def go(worker: subprocess.Popen[str]) -> None:
    assert worker.stdin is not None
    worker.stdin.write("go\n")
    worker.stdin.flush()


# --- the ordinary path -------------------------------------------------------------------


def test_a_copy_of_the_template_starts_answers_and_keeps_the_template_as_it_was(cache, make, runner):
    first, detail = make("first")
    assert "and saved it as the initdb template" in detail, detail
    saved = template(runner)
    before = stamp(saved)
    assert initdb_cache.cache_root() == cache / "homer-ops" / "initdb"
    assert saved.parent == initdb_cache.cache_root() and saved.name.endswith(".pack")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and saved.stat().st_uid == os.geteuid()
    assert packed_version(saved) == "18"

    copied, detail = make("copied")
    assert detail.startswith("copied the initdb template ("), detail
    assert stamp(saved) == before

    top = copied.stat()
    assert stat.S_IMODE(top.st_mode) == 0o700 and top.st_uid == owner_uid(runner)
    assert contents(copied) == contents(first)  # the same files, bytes and modes
    manifest = cluster_pack.read_manifest(saved)
    assert {entry[1] for entry in manifest["entries"]} == set(tree(first))
    assert {path.lstat().st_uid for path in copied.rglob("*")} == {owner_uid(runner)}
    assert not leftovers(saved.parent)
    assert answers(copied, runner)


def test_two_clusters_copied_from_one_template_are_independent(make, runner):
    make("source")
    before = stamp(template(runner))
    one, detail_one = make("one")
    two, detail_two = make("two")
    assert detail_one.startswith("copied") and detail_two.startswith("copied")
    with server(one, runner) as first, server(two, runner) as second:
        first.execute("CREATE TABLE only_in_one (id int)")
        first.execute("INSERT INTO only_in_one VALUES (1)")
        assert first.execute("SELECT count(*) FROM only_in_one").fetchone() == (1,)
        assert second.execute("SELECT to_regclass('only_in_one')").fetchone() == (None,)
        second.execute("CREATE TABLE only_in_two (id int)")
        assert first.execute("SELECT to_regclass('only_in_two')").fetchone() == (None,)
        # Documented: copies share the template's system identifier.
        identity = "SELECT system_identifier FROM pg_control_system()"
        assert first.execute(identity).fetchone() == second.execute(identity).fetchone()
    assert stamp(template(runner)) == before  # the template is read, never written


# --- concurrency and interrupted builds ----------------------------------------------------


def test_two_processes_building_at_once_leave_one_valid_template_and_two_valid_clusters(
    cache, work, runner, tmp_path
):
    dirs = [work / "racer-a", work / "racer-b"]
    for data_dir in dirs:
        data_dir.mkdir(mode=0o700)
        give_to(runner, data_dir)
    workers = [spawn_worker(data_dir, tmp_path / f"state-{i}") for i, data_dir in enumerate(dirs)]
    for worker in workers:  # both are ready: release them together, the cache still empty
        go(worker)
    details = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        details.append(out.strip())
    print(details)
    assert sum("and saved it as the initdb template" in detail for detail in details) == 1, details
    saved = template(runner)
    assert [path.name for path in saved.parent.iterdir()] == [saved.name]  # no staging left behind
    assert packed_version(saved) == "18"
    for data_dir in dirs:
        assert answers(data_dir, runner)
    copied, detail = _fresh_copy(work, runner, tmp_path)
    assert detail.startswith("copied"), detail
    assert answers(copied, runner)


def _fresh_copy(work: Path, runner: Account | None, tmp_path: Path) -> tuple[Path, str]:
    data_dir = work / "afterwards"
    data_dir.mkdir(mode=0o700)
    give_to(runner, data_dir)
    run = backend_run(tmp_path / "state-after")
    return data_dir, initdb_cache.initialise(data_dir, pg_bin_dir(), runner, ARGS, run)


def test_a_build_killed_midway_leaves_nothing_that_is_used(cache, work, runner, tmp_path):
    data_dir = work / "killed"
    data_dir.mkdir(mode=0o700)
    give_to(runner, data_dir)
    worker = spawn_worker(data_dir, tmp_path / "state-killed")
    go(worker)
    parent, staging = template(runner).parent, None
    deadline = time.monotonic() + 60
    while staging is None and worker.poll() is None and time.monotonic() < deadline:
        found = list(parent.glob(".*.tmp-*")) if parent.is_dir() else []
        if found:
            # Let the copy get under way (it is not atomic), then kill it without warning.
            time.sleep(0.01)
            worker.send_signal(signal.SIGKILL)
            staging = found[0]
        time.sleep(0.001)
    worker.communicate(timeout=30)
    if staging is None or template(runner).exists():
        pytest.skip("the build finished before the kill landed (window missed)")
    assert staging.is_file()  # the half-written pack stays where it was written

    after, detail = _fresh_copy(work, runner, tmp_path)
    assert "and saved it as the initdb template" in detail, detail  # not copied from the half build
    assert staging.is_file()  # fresh: not swept yet
    assert packed_version(template(runner)) == "18"
    assert answers(after, runner)


def test_a_half_built_template_is_not_used_and_stale_leftovers_are_swept(cache, make, runner):
    key = template(runner)
    key.parent.mkdir(parents=True)
    half = key.parent / f".{key.name}.tmp-halfbuilt"  # the name a build in progress uses
    half.write_bytes(cluster_pack.MAGIC + b'{"entries": [["d", "global", 448]')  # cut short
    stale = key.parent / f".{key.name}.tmp-stale"
    stale.write_bytes(cluster_pack.MAGIC)
    stale_dir = key.parent / f".{key.name}.tmp-olderrelease"  # an older release built directories
    (stale_dir / "global").mkdir(parents=True)
    old = time.time() - initdb_cache.STALE_AFTER_S - 60
    for leftover in (stale, stale_dir):
        os.utime(leftover, (old, old))

    data_dir, detail = make("after-half")
    assert detail.startswith("initialised") and "and saved it as the initdb template" in detail
    assert half.is_file() and not stale.exists() and not stale_dir.exists()
    names = {entry[1] for entry in cluster_pack.read_manifest(key)["entries"]}
    assert names > {"PG_VERSION", "global", "global/pg_control", "base", "pg_wal"}
    assert answers(data_dir, runner)
    copied, detail = make("copied")
    assert detail.startswith("copied") and answers(copied, runner)


def _fake_cluster(root: Path, version: str | None) -> Path:
    (root / "global").mkdir(parents=True)
    (root / "global" / "pg_control").write_bytes(b"\0" * 8192)
    if version is not None:
        (root / "PG_VERSION").write_text(f"{version}\n")
    return root


@pytest.mark.parametrize(
    "breakage", ["no PG_VERSION", "another major", "cut short", "not a pack", "a directory in its place"]
)
def test_a_broken_template_is_rebuilt(cache, make, runner, tmp_path, breakage):
    key = template(runner)
    key.parent.mkdir(parents=True)
    if breakage == "a directory in its place":
        _fake_cluster(key, "18")
    elif breakage == "not a pack":
        key.write_text("not a cluster")
    else:
        version = {"no PG_VERSION": None, "another major": "17"}.get(breakage, "18")
        cluster_pack.pack(_fake_cluster(tmp_path / "fake", version), key)
        if breakage == "cut short":
            os.truncate(key, key.stat().st_size - 4)

    _, detail = make("rebuilt")
    assert detail.startswith("initialised") and "and saved it as the initdb template" in detail, detail
    assert key.is_file() and packed_version(key) == "18"
    assert "base" in {entry[1] for entry in cluster_pack.read_manifest(key)["entries"]}
    assert not leftovers(key.parent)
    copied, detail = make("copied")
    assert detail.startswith("copied") and answers(copied, runner)


# --- the cache is never a reason to fail ----------------------------------------------------


def test_a_cache_that_cannot_be_created_falls_back_to_plain_initdb(tmp_path, monkeypatch, make, runner):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    data_dir, detail = make("plain")
    assert detail.startswith("initialised") and "the initdb template was not saved" in detail, detail
    assert (data_dir / "PG_VERSION").read_text().strip() == "18"
    assert answers(data_dir, runner)


def _immutable(path: Path, on: bool) -> bool:
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True, check=False)
    return done.returncode == 0


def test_a_read_only_cache_falls_back_when_empty_and_is_still_copied_from_when_full(cache, make, runner):
    cache.mkdir()
    if not _immutable(cache, True):  # root ignores modes; the immutable flag stops root too
        pytest.skip("chattr +i is not available here")
    try:
        data_dir, detail = make("read-only-empty")
        assert "the initdb template was not saved" in detail and "Operation not permitted" in detail
        assert (data_dir / "PG_VERSION").is_file() and not (cache / "homer-ops").exists()
    finally:
        _immutable(cache, False)

    make("fills-the-cache")
    parent = template(runner).parent
    assert _immutable(parent, True)
    try:
        copied, detail = make("read-only-full")
        assert detail.startswith("copied"), detail
    finally:
        _immutable(parent, False)
    assert answers(copied, runner)


def test_a_template_that_cannot_be_unpacked_falls_back_and_leaves_a_clean_cluster(cache, make, runner):
    make("source")
    key = template(runner)
    manifest = cluster_pack.read_manifest(key)
    entries = manifest["entries"]
    # A whole pack, but a file is listed before its directory: the unpack fails midway.
    moved = next(i for i, entry in enumerate(entries) if entry[1] == "global/pg_control")
    entries.insert(0, entries.pop(moved))
    data = key.read_bytes()[-manifest["data"] :]  # the bytes no longer match their entries: never read
    key.write_bytes(cluster_pack.MAGIC + json.dumps(manifest).encode() + b"\n" + data)
    before = stamp(key)
    data_dir, detail = make("fallback")
    assert "the initdb template could not be copied (No such file or directory: global/pg_control)" in detail
    assert stamp(key) == before  # the template is left alone: the fault may be on the reader's side
    assert answers(data_dir, runner)


def test_options_that_are_not_in_the_arguments_are_never_cached(cache, make, runner, tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text("secret\n")
    pwfile.chmod(0o644)
    allow_traverse(tmp_path)
    data_dir, detail = make("with-password", [*ARGS, f"--pwfile={pwfile}"])
    assert detail.endswith("no initdb template: --pwfile is not cached"), detail
    assert (data_dir / "PG_VERSION").is_file()
    assert not (cache / "homer-ops").exists()
