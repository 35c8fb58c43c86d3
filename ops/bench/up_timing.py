"""Section 1: cold and warm `invoke up` against the same steps run bare, medians of repeats.

The harness runs as a user types it (`invoke up` in a subprocess, so interpreter start-up
counts) in a throwaway state dir and stack. Bare is what a script would do: the database
(embedded: initdb + pg_ctl start; docker: `containers.run` of the same image and a SELECT 1
loop), `alembic upgrade head`, uvicorn to its first 200 on /health.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from docker.errors import DockerException

from app.driver import DRIVER
from ops import labels
from ops.backends.docker import SHM_SIZE
from ops.backends.embedded import pg_bin_dir
from ops.bench.polling import until
from ops.bench.stats import medians, ratio
from ops.errors import ApiError, BackendUnavailable, DatabaseError, MigrationError, OpsError
from ops.invoke_cli import run_invoke
from ops.noop import CERTIFICATE
from ops.platform import SERVICE_USER, allow_traverse, give_to, service_account
from ops.procs import free_port, tail, terminate
from ops.signals import sigint_held

READY_TIMEOUT_S = 30.0
POLL_S = 0.02  # the harness's own first retry interval (settings.wait_initial)


class CommandFailed(OpsError):
    """A harness command run by the bench failed; its exit code is passed on."""

    def __init__(self, args: tuple[str, ...], code: int, stderr: str) -> None:
        super().__init__(
            f"`invoke {' '.join(args)}` failed with exit code {code} during the bench",
            "run it by hand to see why",
            evidence=stderr[-3000:],
        )
        self.exit_code = code


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without the user's OPS_*/INVOKE_* and DATABASE_URL, plus `settings` as OPS_*."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPS_", "INVOKE_"))}
    env.pop("DATABASE_URL", None)
    env.update({f"OPS_{key.upper()}": value for key, value in settings.items()})
    return env


def invoke(project: Path, env: dict[str, str], *args: str, check: bool = True) -> None:
    result = run_invoke(project, env, *args)
    if check and result.returncode:
        raise CommandFailed(args, result.returncode, result.stderr)


def _timed_invoke(project: Path, env: dict[str, str], *args: str) -> float:
    began = time.perf_counter()
    invoke(project, env, *args)
    return time.perf_counter() - began


def harness_run(project: Path, backend: str, image: str | None, deferred: list[Path]) -> dict[str, Any]:
    """One cold `up` (no data), its ledger's step durations, then one warm `up`; stopped after, its
    state dir (the embedded data) left in `deferred` for the caller to delete (see stack_figures)."""
    state_dir = Path(tempfile.mkdtemp(prefix="bench-up-"))
    stack = f"bench-{secrets.token_hex(4)}"
    env = clean_env(
        state_dir=str(state_dir),
        stack=stack,
        backend=backend,
        seed="false",
        api_port=str(free_port()),
        db_port="0",
        **({"docker_image": image} if image else {}),
    )
    try:
        cold = _timed_invoke(project, env, "up")
        cold_steps = _ledger(state_dir)
        warm = _timed_invoke(project, env, "up")  # the no-op certificate's short path (ops.noop)
        (state_dir / CERTIFICATE).unlink(missing_ok=True)
        warm_full = _timed_invoke(project, env, "up")  # the ordinary path, every probe run
        warm_steps = _ledger(state_dir)
        plan = _timed_invoke(project, env, "up", "--plan")
        floor = _timed_invoke(project, env, "--version")  # what every Invoke command pays
        listing = _timed_invoke(project, env, "--list")
    finally:
        with sigint_held():
            invoke(project, env, "down", *(["--volumes"] if backend == "docker" else []), check=False)
            deferred.append(state_dir)
    return {
        "cold": cold,
        "warm": warm,
        "warm_full": warm_full,
        "steps": cold_steps,
        "warm_steps": warm_steps,
        "plan": plan,
        "floor": floor,
        "list": listing,
    }


def _ledger(state_dir: Path) -> dict[str, float]:
    """Each step's duration in the last command's ledger."""
    steps = json.loads((state_dir / "state.json").read_text())["steps"]
    return {step["name"]: step["duration_s"] for step in steps}


def stack_figures(
    project: Path, backend: str, repeats: int, client: Any = None, image: str | None = None
) -> dict[str, Any]:
    """Cold and warm `up`, each step, the bare steps and the ratio harness/bare (medians), after a
    warm-up round of each side that is not counted; the side that goes first alternates.

    The data directories of every run, the harness's and the bare ones, are deleted only once all
    have run: on this ext4 (no journal, mounted with discard) files created within a minute of
    deleting a thousand others are several times slower to create, so a run's teardown would
    slow the next run's cluster, whichever side it is (the docker section does the same)."""
    runs, bare = [], []
    deferred: list[Path] = []
    try:
        harness_run(project, backend, image, deferred)  # a warm-up round of each side, not counted:
        bare_steps(project, backend, client, image, deferred)  # the page cache holds both sides' files
        for repeat in range(repeats):  # who goes first alternates: neither side always follows the other
            if repeat % 2:
                bare.append(bare_steps(project, backend, client, image, deferred))
                runs.append(harness_run(project, backend, image, deferred))
            else:
                runs.append(harness_run(project, backend, image, deferred))
                bare.append(bare_steps(project, backend, client, image, deferred))
    finally:
        for path in deferred:
            shutil.rmtree(path, ignore_errors=True)
    cold = medians({"s": run["cold"]} for run in runs)["s"]
    warm = medians({"s": run["warm"]} for run in runs)["s"]
    warm_full = medians({"s": run["warm_full"]} for run in runs)["s"]
    quick = medians({key: run[key] for key in ("plan", "floor", "list")} for run in runs)
    bare_median = medians(bare)
    return {
        "repeats": repeats,
        "cold_up_s": cold,
        "warm_up_s": warm,
        "warm_up_full_path_s": warm_full,
        "plan_s": quick["plan"],
        "invoke_floor_s": quick["floor"],
        "list_s": quick["list"],
        "ratio_warm_to_floor": ratio(warm, quick["floor"]),
        "ratio_list_to_floor": ratio(quick["list"], quick["floor"]),
        "ratio_plan_to_warm": ratio(quick["plan"], warm_full),
        "ratio_warm_full_path_to_floor": ratio(warm_full, quick["floor"]),
        "cold_up_steps_s": medians(run["steps"] for run in runs),
        "warm_up_steps_s": medians(run["warm_steps"] for run in runs),
        "bare_s": bare_median,
        "ratio_cold_to_bare": ratio(cold, bare_median["total_s"]),
        "runs": {
            "cold_s": [round(run["cold"], 3) for run in runs],
            "warm_s": [round(run["warm"], 3) for run in runs],
            "bare_total_s": [round(run["total_s"], 3) for run in bare],
        },
    }


def bare_steps(
    project: Path, backend: str, client: Any, image: str | None, deferred: list[Path]
) -> dict[str, float]:
    """The database, `alembic upgrade head` and uvicorn to its first 200, each timed, then stopped;
    the embedded data directory is left in `deferred` for the caller to delete."""
    cleanup = ExitStack()
    try:
        began = time.perf_counter()
        if backend == "docker":
            url = cleanup.enter_context(_bare_container(client, image))
            figures = {"container_run_and_select1_s": time.perf_counter() - began}
        else:
            url = cleanup.enter_context(_bare_embedded(deferred))
            figures = {"initdb_and_start_s": time.perf_counter() - began}
        env = {**clean_env(), "DATABASE_URL": url}
        began = time.perf_counter()
        migrate = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )
        if migrate.returncode:
            raise MigrationError("bare `alembic upgrade head` failed", evidence=migrate.stderr[-3000:])
        figures["alembic_upgrade_s"] = time.perf_counter() - began
        began = time.perf_counter()
        cleanup.enter_context(bare_uvicorn(project, env))
        figures["uvicorn_first_200_s"] = time.perf_counter() - began
    finally:
        with sigint_held():
            cleanup.close()
    figures["total_s"] = sum(figures.values())
    return figures


@contextmanager
def _bare_embedded(deferred: list[Path]) -> Iterator[str]:
    """initdb + pg_ctl start -w from the wheel, as the service user when root; yields the URL."""
    work = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    data, port, bin_dir = work / "data", free_port(), pg_bin_dir()
    runner = service_account()
    as_user = ["runuser", "-u", SERVICE_USER, "--"] if runner else []
    password, pwfile = secrets.token_hex(12), work / "pw"
    pwfile.write_text(password)
    if runner:
        give_to(runner, work, pwfile)
        allow_traverse(work)
    try:
        for argv in (
            [
                "initdb",
                "-D",
                str(data),
                "-U",
                "postgres",
                "--no-sync",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-instructions",
            ],
            [
                "pg_ctl",
                "-D",
                str(data),
                "-w",
                "-l",
                str(work / "log"),
                "-o",
                f"-p {port} -c listen_addresses=127.0.0.1 -k {work}",
                "start",
            ],
        ):
            done = subprocess.run(
                [*as_user, str(bin_dir / argv[0]), *argv[1:]], capture_output=True, text=True
            )
            if done.returncode:
                raise DatabaseError(f"bare {argv[0]} failed", evidence=done.stderr + tail(work / "log"))
        yield f"{DRIVER}://postgres:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
            check=False,
        )
        deferred.append(work)


@contextmanager
def _bare_container(client: Any, image: str | None) -> Iterator[str]:
    """`containers.run` of the harness's image, then SELECT 1 until it works; yields the URL."""
    password, name = secrets.token_hex(12), labels.bench_container_name(secrets.token_hex(4))
    try:
        container = client.containers.run(
            image,
            detach=True,
            name=name,
            shm_size=SHM_SIZE,
            labels={labels.STACK: name, labels.KIND: "bench"},
            environment={"POSTGRES_USER": "homer", "POSTGRES_PASSWORD": password, "POSTGRES_DB": "homer"},
            ports={"5432/tcp": ("127.0.0.1", None)},
        )
    except DockerException as exc:
        raise BackendUnavailable(f"the engine could not run {image}: {str(exc)[:200]}") from None
    try:
        port = _published_port(container)
        _until(lambda: _select_one(port, password), "the bare container to answer SELECT 1", DatabaseError)
        yield f"{DRIVER}://homer:{password}@127.0.0.1:{port}/homer"
    finally:
        container.remove(force=True, v=True)


def _published_port(container: Any) -> int:
    def port() -> int | None:
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"].get("5432/tcp") or []
        return int(bindings[0]["HostPort"]) if bindings else None

    return _until(port, "the engine to publish the bare container's port", DatabaseError)


def _select_one(port: int, password: str) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user="homer", password=password, dbname="homer", connect_timeout=2
        ) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


@contextmanager
def bare_uvicorn(project: Path, env: dict[str, str]) -> Iterator[str]:
    """uvicorn on a free loopback port until GET /health is 200 (its URL); stopped on exit."""
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def healthy() -> bool:
            if api.poll() is not None:
                raise ApiError(f"bare uvicorn exited with code {api.returncode} before /health answered")
            try:
                return (
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1, trust_env=False).status_code
                    == 200
                )
            except httpx.HTTPError:
                return False

        _until(healthy, "bare uvicorn's /health to answer 200", ApiError)
        yield f"http://127.0.0.1:{port}"
    finally:
        terminate(api.pid)
        api.wait()


def _until(probe: Any, what: str, error: type[OpsError]) -> Any:
    return until(probe, what, error, POLL_S, READY_TIMEOUT_S)
