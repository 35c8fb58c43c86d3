"""`invoke ci`: a fresh, isolated stack, the tests, a smoke search, a diagnosis and artifacts.

The phases run as ledger steps: `artifacts` (the folder is writable), `up`'s own steps,
`tests` and `smoke` (skipped when the stack is not up; ops.ci_checks), `diagnose`, then —
always, also after a failure or Ctrl-C — `teardown` (`down --volumes`) and `collect` (the
artifacts, redacted; ops.ci_collect). Logs are copied after the teardown so that they hold
the shutdown too; steps.json and summary.md are written last, so that they hold every step,
`collect` included. The run fails with the exit code of its first failing step (Ctrl-C: 130;
ops.ci_outcome). With a shard (`--shard K/N`, see ops.shards) the tests are pytest-split's
K-th group, and the stack and every artifact carry `KofN` in their names.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops import ci_collect, shards, stack, step_report
from ops.artifacts import ArtifactWriter
from ops.ci_checks import run_tests, smoke
from ops.ci_outcome import Outcome
from ops.diagnosis import diagnose
from ops.errors import ArtifactsError, UsageError
from ops.procs import free_port
from ops.settings import Settings
from ops.shards import Shard
from ops.signals import signals_held, sigterm_as_interrupt
from ops.state import StateProblem, load_state
from ops.steps import FAIL, Emit, Ledger, Step

STACK_NAME_MAX = 40


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
    """The phases, in order, each a ledger step; what they leave and how the run ends are elsewhere."""

    settings: Settings
    opts: CiOptions
    emit: Emit
    env: Mapping[str, str]
    secrets: list[str] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    stack_up: bool = False
    api_url: str = ""
    diagnosis: dict[str, Any] | None = None
    torn_down: bool = False

    def __post_init__(self) -> None:
        self.record = step_report.StepRecord(step_report.hooks_for(self.emit, self.env, self.secrets))
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
            self.outcome.fail(exc)
        finally:
            with signals_held((signal.SIGINT, signal.SIGTERM), self._note_interrupt) as deferred:
                self._phase("teardown", self._teardown)
                self._phase("collect", self._collect)
                self._finish()
            if deferred:
                self.outcome.fail(KeyboardInterrupt())
        failure = self.outcome.failure
        if failure is not None:
            kept = "" if isinstance(failure, ArtifactsError) else f"; artifacts in {self.opts.artifacts}"
            self.emit(f"ci failed at step {self._failed_name()} (exit {self.outcome.exit_code}){kept}")
        self.outcome.raise_it()
        return CiResult(round(time.monotonic() - began, 2), self.opts.artifacts, self.record.as_dicts())

    def _note_interrupt(self, _signum: int) -> None:
        self.emit("interrupt received: finishing the teardown first")

    def _phase(self, name: str, action: Callable[[Step], None], needs_stack: bool = False) -> None:
        """Run one phase as a step; its failure is remembered, never stops teardown or collection."""
        interrupted = self.outcome.interrupted
        if needs_stack and (not self.stack_up or interrupted):
            with self.ledger.step(name) as step:
                step.skip(f"not run: {self._failed_name()} {'was interrupted' if interrupted else 'failed'}")
            return
        try:
            with self.ledger.step(name) as step:
                action(step)
        except (Exception, KeyboardInterrupt) as exc:
            self.outcome.fail(exc)

    # --- the phases ------------------------------------------------------------------

    def _check_artifacts(self, step: Step) -> None:
        self.writer.prepare()
        step.detail = f"{self.opts.artifacts} is writable"

    def _up(self) -> None:
        if self.outcome.failure is not None:
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
                self.ledger.record_failure("up", exc)  # failed outside any step (lock, backend choice)
            self.outcome.fail(exc)
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
        cwd, tests, shard = self.settings.project_dir, self.opts.tests, self.opts.shard
        step.detail = run_tests(argv, cwd, env, junit_xml, tests, shard)

    def _smoke(self, step: Step) -> None:
        step.detail = smoke(self.api_url)

    def _diagnose(self, step: Step) -> None:
        self.diagnosis = diagnose(self.settings)
        problems = "; ".join(self.diagnosis["problems"][:3])
        step.detail = f"{self.diagnosis['verdict']}" + (f": {problems}" if problems else "")

    def _teardown(self, step: Step) -> None:
        self._learn_secret()
        done = stack.down(self.settings, volumes=True, emit=self.emit, hooks=step_report.NoHooks())
        self.torn_down = True
        step.detail = "; ".join(done) or "nothing was running"

    def _collect(self, step: Step) -> None:
        if isinstance(self.outcome.failure, ArtifactsError):
            step.skip("not possible: the artifacts folder is not writable")
            return
        step.detail = ci_collect.collect(self.writer, self.settings, self.diagnosis, self._junit_path())

    def _finish(self) -> None:
        """steps.json, summary.md and the GitHub step summary; then the CI stack's state dir goes."""
        steps, failed, shard = self.record.as_dicts(), self.record.failed, self.opts.shard
        backend = (self.diagnosis or {}).get("backend")
        summary = ci_collect.summary(self.settings.stack, shard, self.opts.artifacts, steps, failed, backend)
        if not isinstance(self.outcome.failure, ArtifactsError):
            document = ci_collect.ledger_document(self.settings.stack, shard, steps, failed, self.outcome)
            try:
                self.writer.json("steps.json", document)
                self.writer.text("summary.md", summary)
            except ArtifactsError as exc:
                self.outcome.fail(exc)
        try:
            step_report.append_step_summary(summary, self.env)
        except OSError as exc:
            self.emit(f"warning: could not append to $GITHUB_STEP_SUMMARY ({exc.strerror})")
        if self.torn_down:
            ci_collect.remove_state_dir(self.settings.state_dir)

    # --- helpers ---------------------------------------------------------------------

    def _failed_name(self) -> str:
        failed = self.record.failed
        return failed.name if failed else "an earlier step"

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
