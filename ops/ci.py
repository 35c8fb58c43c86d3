"""`invoke ci`: a fresh, isolated stack, the tests, a smoke search, a diagnosis and artifacts.

The phases run as ledger steps: `artifacts` (the folder is writable), `up`'s own steps,
`tests` and `smoke` (skipped when the stack is not up), `diagnose`, then — always, also
after a failure or Ctrl-C — `teardown` (`down --volumes`) and `collect` (the artifacts,
redacted). Logs are copied after the
teardown so that they hold the shutdown too; steps.json and summary.md are written last,
so that they hold every step, `collect` included. The run fails with the exit code of its
first failing step (Ctrl-C: 130). With a shard (`--shard K/N`, see ops.shards) the tests are
pytest-split's K-th group, and the stack and every artifact carry `KofN` in their names.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ops import junit, report, shards, stack
from ops.artifacts import ArtifactWriter, versions_text
from ops.diagnose import diagnose, engine_version
from ops.errors import ApiError, ArtifactsError, ChecksFailed, UsageError
from ops.procs import free_port
from ops.settings import Settings
from ops.shards import Shard
from ops.signals import signals_held, sigterm_as_interrupt
from ops.state import StateProblem, load_state
from ops.steps import FAIL, Ledger, Step

Emit = Callable[[str], None]
SMOKE_QUERY = "μηνιν αειδε"
SMOKE_URN = "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.1"
CHILD_GRACE_S = 30
STACK_NAME_MAX = 40
LOGS = ("api", "db", "migrate")
NO_TESTS_COLLECTED = 5  # pytest's exit code when it ran nothing (a shard may be empty)


@dataclass(frozen=True)
class CiOptions:
    tests: str | None  # a path for pytest, or None to skip the suite
    artifacts: Path
    shard: Shard | None = None  # run only this shard of the tests
    store_durations: bool = False  # record the tests' durations in .test_durations


@dataclass(frozen=True)
class CiResult:
    seconds: float
    artifacts: Path
    steps: list[dict[str, Any]]


def stack_name(env: Mapping[str, str], shard: Shard | None = None) -> str:
    """A unique stack name: ci-<GitHub run id>-<attempt>-<random>, or ci-<random>; then -s<K>of<N>."""
    suffix = secrets.token_hex(3) + (f"-s{shard.label}" if shard else "")
    run_id = "".join(ch for ch in env.get("GITHUB_RUN_ID", "") if ch.isalnum()).lower()[:20]
    if run_id:
        attempt = "".join(ch for ch in env.get("GITHUB_RUN_ATTEMPT", "1") if ch.isdigit())[:4] or "1"
        room = STACK_NAME_MAX - len(f"ci--{attempt}-{suffix}")  # the settings' limit on a stack name
        return f"ci-{run_id[:room]}-{attempt}-{suffix}"
    return f"ci-{suffix}"


def isolated_flags(env: Mapping[str, str], shard: Shard | None = None) -> dict[str, Any]:
    """Settings flags for a CI stack of its own: name, state dir, a free API port, seeded."""
    name = stack_name(env, shard)
    return {"stack": name, "state_dir": f".ops/{name}", "api_port": free_port(), "seed": True}


def options(
    settings: Settings,
    tests: str,
    artifacts: str,
    shard: Shard | None = None,
    store_durations: bool = False,
) -> CiOptions:
    """Validate the flags: the tests path must exist (or be `none`)."""
    wanted = None if tests.strip().lower() in ("none", "") else tests
    if wanted is not None and not (settings.project_dir / wanted.split("::")[0]).exists():
        raise UsageError(f"--tests {tests!r} does not exist", "give a test file or folder, or `none`")
    folder = Path(artifacts)
    absolute = folder if folder.is_absolute() else settings.project_dir / folder
    return CiOptions(wanted, absolute, shard, store_durations)


def pytest_command(opts: CiOptions, project_dir: Path, junit_xml: Path, basetemp: Path) -> list[str]:
    """The `tests` step's command line: pytest on the tests (of the shard), JUnit XML, no cache."""
    assert opts.tests is not None
    return [
        sys.executable, "-m", "pytest", opts.tests, f"--junitxml={junit_xml}", f"--basetemp={basetemp}",
        "-p", "no:cacheprovider", *shards.pytest_args(opts.shard, project_dir, opts.store_durations),
    ]  # fmt: skip


def run(
    settings: Settings, opts: CiOptions, emit: Emit = print, env: Mapping[str, str] | None = None
) -> CiResult:
    """The whole CI run. Raises the first failing step's error (after teardown and collection)."""
    return _CiRun(settings, opts, emit, os.environ if env is None else env).run()


@dataclass
class _CiRun:
    settings: Settings
    opts: CiOptions
    emit: Emit
    env: Mapping[str, str]
    secrets: list[str] = field(default_factory=list)
    failure: BaseException | None = None
    interrupted: bool = False
    stack_up: bool = False
    api_url: str = ""
    diagnosis: dict[str, Any] | None = None
    torn_down: bool = False

    def __post_init__(self) -> None:
        self.record = report.StepRecord(report.hooks_for(self.emit, self.env, self.secrets))
        self.ledger = Ledger(self.emit, hooks=self.record)
        self.writer = ArtifactWriter(self.opts.artifacts, self.secrets, self.opts.shard)

    def run(self) -> CiResult:
        began = time.monotonic()
        shard = f", shard {self.opts.shard}" if self.opts.shard else ""
        self.emit(f"ci: stack {self.settings.stack}, state in {self.settings.state_dir}{shard}")
        try:
            with sigterm_as_interrupt():
                self._phase("artifacts", self._check_artifacts)
                self._up()
                self._phase("tests", self._tests, needs_stack=True)
                self._phase("smoke", self._smoke, needs_stack=True)
                self._phase("diagnose", self._diagnose)
        except KeyboardInterrupt as exc:  # between steps: still tear down
            self._fail(exc)
        finally:
            with signals_held((signal.SIGINT, signal.SIGTERM), self._note_interrupt) as deferred:
                self._phase("teardown", self._teardown)
                self._phase("collect", self._collect)
                self._finish()
            if deferred:
                self._fail(KeyboardInterrupt())
        if self.failure is not None:
            kept = "" if isinstance(self.failure, ArtifactsError) else f"; artifacts in {self.opts.artifacts}"
            self.emit(f"ci failed at step {self._failed_name()} (exit {self.exit_code}){kept}")
        if self.interrupted:
            raise KeyboardInterrupt
        if self.failure is not None:
            raise self.failure
        return CiResult(round(time.monotonic() - began, 2), self.opts.artifacts, self.record.as_dicts())

    # --- phases ----------------------------------------------------------------------

    def _note_interrupt(self, _signum: int) -> None:
        self.emit("interrupt received: finishing the teardown first")

    def _phase(self, name: str, action: Callable[[Step], None], needs_stack: bool = False) -> None:
        """Run one phase as a step; its failure is remembered, never stops teardown or collection."""
        if needs_stack and (not self.stack_up or self.interrupted):
            with self.ledger.step(name) as step:
                step.skip(
                    f"not run: {self._failed_name()} {'was interrupted' if self.interrupted else 'failed'}"
                )
            return
        try:
            with self.ledger.step(name) as step:
                action(step)
        except (Exception, KeyboardInterrupt) as exc:
            self._fail(exc)

    def _check_artifacts(self, step: Step) -> None:
        self.writer.prepare()
        step.detail = f"{self.opts.artifacts} is writable"

    def _up(self) -> None:
        if self.failure is not None:
            with self.ledger.step("up") as step:
                step.skip(f"not run: {self._failed_name()} failed")
            return
        from ops.ingest import seed_iliad_book_one

        before = len(self.record.steps)
        try:
            result = stack.up(self.settings, self.emit, seed=seed_iliad_book_one, hooks=self.record)
            self.api_url = result.api_url  # where the API really listens (the state file's)
            self.stack_up = True
        except (Exception, KeyboardInterrupt) as exc:
            if not any(step.status == FAIL for step in self.record.steps[before:]):
                self._record_failure("up", exc)  # failed outside any step (lock, backend choice)
            self._fail(exc)
        finally:
            self._learn_secret()

    def _tests(self, step: Step) -> None:
        if self.opts.tests is None:
            step.skip("not requested (--tests none)")
            return
        junit_xml = self._junit_path()
        basetemp = self.settings.state_dir / "pytest"
        argv = pytest_command(self.opts, self.settings.project_dir, junit_xml, basetemp)
        env = {**os.environ, "HOMER_API_URL": self.api_url}
        code = _run_child(argv, self.settings.project_dir, env)
        shard = f" (shard {self.opts.shard})" if self.opts.shard else ""
        step.detail = f"pytest {self.opts.tests}{shard}: {_junit_counts(junit_xml)}, exit code {code}"
        if code == NO_TESTS_COLLECTED and self.opts.shard is not None:
            step.detail += f": no tests fell to shard {self.opts.shard}"
        elif code != 0:
            raise ChecksFailed(
                f"the tests failed (pytest exit code {code})",
                f"see {shards.artifact_name('junit.xml', self.opts.shard)} and the output above",
            )

    def _smoke(self, step: Step) -> None:
        url = f"{self.api_url}/search"
        try:
            response = httpx.get(url, params={"q": SMOKE_QUERY}, timeout=10, trust_env=False)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"the smoke search got no answer from {url} ({type(exc).__name__})", "see logs/api.log"
            ) from None
        first = _first_hit(response)
        if first.get("urn") != SMOKE_URN:
            raise ChecksFailed(
                f"smoke: GET /search?q={SMOKE_QUERY} answered {response.status_code} "
                f"without Iliad 1.1 first (first hit: {first.get('urn', 'none')})",
                "see logs/api.log",
            )
        step.detail = f"GET /search?q={SMOKE_QUERY} -> Iliad 1.1 first: {first.get('text', '')}"

    def _diagnose(self, step: Step) -> None:
        self.diagnosis = diagnose(self.settings)
        problems = "; ".join(self.diagnosis["problems"][:3])
        step.detail = f"{self.diagnosis['verdict']}" + (f": {problems}" if problems else "")

    def _teardown(self, step: Step) -> None:
        self._learn_secret()
        done = stack.down(self.settings, volumes=True, emit=self.emit, hooks=report.NoHooks())
        self.torn_down = True
        step.detail = "; ".join(done) or "nothing was running"

    def _collect(self, step: Step) -> None:
        if isinstance(self.failure, ArtifactsError):
            step.skip("not possible: the artifacts folder is not writable")
            return
        write = self.writer
        write.json("diagnose.json", self.diagnosis or {"note": "diagnose did not run"})
        server = (self.diagnosis or {}).get("db", {}).get("server_version")
        write.text("versions.txt", versions_text(server, engine_version()))
        if self._junit_path().exists():
            write.copy("junit.xml", self._junit_path(), "no JUnit XML")  # junit-KofN.xml for a shard
        declared = sorted(path.stem for path in self.settings.logs_dir.glob("*.log") if path.stem not in LOGS)
        for name in (*LOGS, *declared):  # the stack's own logs, then any declared process's
            write.copy(f"logs/{name}.log", self.settings.logs_dir / f"{name}.log", f"no {name} log")
        step.detail = f"{len(write.written)} files in {self.opts.artifacts}"

    def _finish(self) -> None:
        """steps.json, summary.md and the GitHub step summary; then the CI stack's state dir goes."""
        steps = self.record.as_dicts()
        failed = self.record.failed
        verdict = f"**FAILED** at step `{failed.name}`" if failed else "**PASSED**"
        shard = [f"shard: {self.opts.shard}"] if self.opts.shard else []
        summary = report.summary_markdown(
            f"invoke ci — stack {self.settings.stack}",
            verdict,
            steps,
            [
                *shard,
                f"backend: {(self.diagnosis or {}).get('backend') or 'unknown'}",
                f"artifacts: {self.opts.artifacts}",
            ],
        )
        if not isinstance(self.failure, ArtifactsError):
            try:
                self.writer.json("steps.json", self._ledger_document(steps, failed))
                self.writer.text("summary.md", summary)
            except ArtifactsError as exc:
                self._fail(exc)
        try:
            report.append_step_summary(summary, self.env)
        except OSError as exc:
            self.emit(f"warning: could not append to $GITHUB_STEP_SUMMARY ({exc.strerror})")
        if self.torn_down:
            self._remove_state_dir()

    # --- helpers ---------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        """Remember the first failure (its exit code is the run's); an interrupt always means 130."""
        if self.failure is None:
            self.failure = exc
        if isinstance(exc, KeyboardInterrupt):
            self.interrupted = True

    def _failed_name(self) -> str:
        failed = self.record.failed
        return failed.name if failed else "an earlier step"

    def _record_failure(self, name: str, exc: BaseException) -> None:
        """A FAIL step for an error raised outside any step (re-raised inside one, then dropped)."""
        with contextlib.suppress(BaseException), self.ledger.step(name):
            raise exc

    def _learn_secret(self) -> None:
        try:
            secrets = load_state(self.settings.state_file).secrets
        except (StateProblem, OSError):
            return
        for password in secrets:
            if password not in self.secrets:
                self.secrets.append(password)

    def _junit_path(self) -> Path:
        return self.settings.state_dir / "junit.xml"

    def _ledger_document(self, steps: list[dict[str, Any]], failed: Step | None) -> dict[str, Any]:
        shard = {"shard": str(self.opts.shard)} if self.opts.shard else {}  # "K/N", as the flag
        return {
            "stack": self.settings.stack,
            **shard,
            "result": "failed" if failed or self.failure else "passed",
            "failed_step": failed.name if failed else None,
            "exit_code": self.exit_code,
            "steps": steps,
        }

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        if self.failure is None:
            return 0
        return int(getattr(self.failure, "exit_code", 1))

    def _remove_state_dir(self) -> None:
        state_dir = self.settings.state_dir
        if state_dir.name.startswith("ci-"):  # only ever a CI stack's own folder
            shutil.rmtree(state_dir, ignore_errors=True)


def _first_hit(response: httpx.Response) -> dict[str, Any]:
    """The first hit of a /search answer ({} when it failed or is not the JSON expected)."""
    if response.status_code != 200:
        return {}
    try:
        hits = response.json().get("hits") or []
    except (ValueError, AttributeError):
        return {}
    return hits[0] if isinstance(hits, list) and hits and isinstance(hits[0], dict) else {}


def _run_child(argv: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run a child with our stdout; on Ctrl-C pass SIGINT on and give it time to clean up."""
    sys.stdout.flush()
    child = subprocess.Popen(argv, cwd=cwd, env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=CHILD_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise


def _junit_counts(path: Path) -> str:
    root = junit.read(path)
    return "no JUnit XML" if root is None else junit.totals(root).line()
