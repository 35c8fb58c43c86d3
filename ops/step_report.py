"""Step output for people and for GitHub Actions: groups, error annotations, a summary table.

Plain `::STEP::<name>::<STATUS>` lines are always printed by the ledger; under GitHub
Actions (`GITHUB_ACTIONS=true`) each step's output is also folded into a
`::group::`/`::endgroup::` pair, a failed step becomes an `::error::` annotation, and
`invoke ci` appends the step table to `$GITHUB_STEP_SUMMARY`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ops.secrets import redact
from ops.steps import FAIL, Emit, Step, StepHooks

DETAIL_WIDTH = 300


def on_github_actions(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    """A workflow command's message: %, CR and LF escaped as GitHub requires."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as escape_data, and also ':' and ','."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GitHubAnnotations:
    """StepHooks writing `::group::`/`::endgroup::` around each step and `::error::` on failure."""

    def __init__(self, emit: Emit, secrets: list[str] | None = None) -> None:
        self._emit = emit
        self.secrets = secrets if secrets is not None else []  # shared: callers may add to it

    def started(self, step: Step) -> None:
        self._emit(f"::group::{escape_data(step.name)}")

    def ended(self, step: Step) -> None:
        self._emit("::endgroup::")
        if step.status == FAIL:
            title = escape_property(f"step {step.name} failed")
            self._emit(f"::error title={title}::{escape_data(redact(step.detail, self.secrets))}")


class NoHooks:
    """StepHooks that do nothing: for a command run inside another's step (groups do not nest)."""

    def started(self, step: Step) -> None:
        pass

    def ended(self, step: Step) -> None:
        pass


class StepRecord:
    """StepHooks keeping every step that ended, in order, across ledgers; passes them on to `inner`."""

    def __init__(self, inner: StepHooks | None = None) -> None:
        self.steps: list[Step] = []
        self._inner = inner

    def started(self, step: Step) -> None:
        if self._inner:
            self._inner.started(step)

    def ended(self, step: Step) -> None:
        self.steps.append(step)
        if self._inner:
            self._inner.ended(step)

    @property
    def failed(self) -> Step | None:
        return next((step for step in self.steps if step.status == FAIL), None)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(step) for step in self.steps]


def hooks_for(
    emit: Emit, env: Mapping[str, str] | None = None, secrets: list[str] | None = None
) -> StepHooks | None:
    """GitHub annotations (masking `secrets`) when running under GitHub Actions, else nothing."""
    return GitHubAnnotations(emit, secrets) if on_github_actions(os.environ if env is None else env) else None


def summary_table(steps: Iterable[Mapping[str, Any]]) -> str:
    """A markdown table of steps: name, status, attempts, start, duration and detail."""
    lines = [
        "| step | status | attempts | started | duration | detail |",
        "| --- | --- | ---: | --- | ---: | --- |",
    ]
    for step in steps:
        cells = [
            f"`{step['name']}`",
            f"**{step['status']}**" if step["status"] == FAIL else str(step["status"]),
            str(step.get("attempts", 1)),
            str(step.get("started_at", "")),
            f"{float(step.get('duration_s', 0.0)):.2f} s",
            cell(str(step.get("detail", ""))),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_markdown(
    title: str, verdict: str, steps: Sequence[Mapping[str, Any]], notes: Iterable[str] = ()
) -> str:
    """The whole summary: a title, the verdict, the step table and notes (e.g. where artifacts are)."""
    parts = [f"## {title}", "", verdict, "", summary_table(steps)]
    parts += [f"- {note}" for note in notes]
    return "\n".join(parts).rstrip() + "\n"


def append_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append `markdown` to $GITHUB_STEP_SUMMARY when set; returns the file written, if any."""
    target = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown + "\n")
    return path


def cell(text: str) -> str:
    """`text` as one markdown table cell: on one line, pipes escaped, at most DETAIL_WIDTH long."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= DETAIL_WIDTH else flat[: DETAIL_WIDTH - 1] + "…"
