"""`invoke ci-merge`: the artifacts of the shards of one CI run, merged into one JUnit file and one summary.

Each `invoke ci --shard K/N` leaves `steps-KofN.json` (its ledger, with `"shard": "K/N"`) and,
when its tests ran, `junit-KofN.xml` beside it (ops.shards names them). The merge finds them
anywhere under a folder (each shard's artifact in a folder of its own, or all in one), checks
that the shards are whole — 1 to N of one N, each once — writes `junit.xml` and `summary.md`
and appends the summary to $GITHUB_STEP_SUMMARY. A failed or missing shard then fails the merge
(exit 1). That no test ran twice is pytest-split's to keep (tests/unit/test_shard_split.py):
JUnit XML cannot tell, since some items share a test id (schemathesis's, one per operation).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops import junit, shards, step_report
from ops.artifacts import ArtifactWriter
from ops.errors import ChecksFailed, UsageError
from ops.shards import Shard

LEDGER = re.compile(r"steps(-\d+of\d+)?\.json")
FAILED_SHOWN = 30  # failed tests listed in the summary


@dataclass(frozen=True)
class ShardRun:
    """One shard's artifacts: what its ledger (steps-KofN.json) says, and its JUnit XML."""

    shard: Shard | None  # None: a run without --shard
    stack: str
    passed: bool
    failed_step: str | None
    exit_code: int
    steps: list[dict[str, Any]]
    junit: ElementTree.Element | None  # None when its tests did not run

    @property
    def name(self) -> str:
        return f"shard {self.shard}" if self.shard else "unsharded run"

    @property
    def outcome(self) -> str:
        return "passed" if self.passed else f"**failed** at `{self.failed_step}`"


@dataclass(frozen=True)
class Merged:
    """The shards found, their JUnit XML as one, what is wrong (nothing: passed) and the summary."""

    runs: list[ShardRun]
    junit: ElementTree.Element
    problems: list[str]
    summary: str

    def verdict_line(self) -> str:
        """`3 shards, 525 tests, 0 failures, 0 errors, 12 skipped`, then what is wrong, if anything."""
        parts = [f"{len(self.runs)} shards, {junit.totals(self.junit).line()}", *self.problems]
        return "; ".join(parts)


def run(folder: Path, out: Path, env: Mapping[str, str]) -> Merged:
    """Merge the shards under `folder` into `out` and the GitHub step summary; ChecksFailed if any failed."""
    merged = merge(folder)
    writer = ArtifactWriter(out, [])
    writer.prepare()
    xml = ElementTree.tostring(merged.junit, encoding="unicode")
    writer.text("junit.xml", f'<?xml version="1.0" encoding="utf-8"?>\n{xml}\n')
    writer.text("summary.md", merged.summary)
    step_report.append_step_summary(merged.summary, env)
    if merged.problems:
        raise ChecksFailed(f"the sharded run failed: {merged.verdict_line()}", f"see {out / 'summary.md'}")
    return merged


def merge(folder: Path) -> Merged:
    """Read every shard's artifacts under `folder` and check that together they are one whole run."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder", "give the folder the shards' artifacts were put in")
    runs, problems = find_runs(folder)
    problems += completeness(runs) + [
        f"{run.name} failed at step `{run.failed_step}` (exit {run.exit_code})"
        for run in runs
        if not run.passed
    ]
    merged = junit.merge((run.name, run.junit) for run in runs if run.junit is not None)
    return Merged(runs, merged, problems, summary_markdown(runs, merged, problems))


def find_runs(folder: Path) -> tuple[list[ShardRun], list[str]]:
    """The runs whose ledgers are under `folder`, in shard order, and the ledgers that cannot be read."""
    runs, problems = [], []
    for path in sorted(folder.rglob("steps*.json")):
        if not LEDGER.fullmatch(path.name):
            continue
        try:
            runs.append(read_run(path))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, UsageError) as exc:
            problems.append(f"{path.relative_to(folder)} cannot be read ({type(exc).__name__})")
    if not runs and not problems:
        problems.append(f"no steps.json or steps-KofN.json under {folder}")
    runs.sort(key=lambda run: (run.shard.total, run.shard.index) if run.shard else (0, 0))
    return runs, problems


def read_run(ledger_path: Path) -> ShardRun:
    """A shard's run from its ledger and the JUnit XML beside it (a bad ledger raises)."""
    ledger = json.loads(ledger_path.read_text(encoding="utf-8"))
    shard = shards.parse(ledger["shard"]) if ledger.get("shard") else None
    return ShardRun(
        shard=shard,
        stack=str(ledger["stack"]),
        passed=ledger["result"] == "passed",
        failed_step=ledger.get("failed_step"),
        exit_code=int(ledger["exit_code"]),
        steps=list(ledger["steps"]),
        junit=junit.read(ledger_path.parent / shards.artifact_name("junit.xml", shard)),
    )


def completeness(runs: list[ShardRun]) -> list[str]:
    """What keeps the shards from being one whole split: another N, a missing shard, one seen twice."""
    splits = sorted({run.shard.total for run in runs if run.shard})
    if len(splits) > 1:
        return [f"the shards come from different splits ({', '.join(f'N={n}' for n in splits)})"]
    if not splits:
        return []
    seen = Counter(run.shard.index for run in runs if run.shard)
    total = splits[0]
    missing = [f"shard {k}/{total} has no artifacts" for k in range(1, total + 1) if not seen[k]]
    return missing + [f"shard {k}/{total} appears {n} times" for k, n in sorted(seen.items()) if n > 1]


def summary_markdown(runs: list[ShardRun], merged: ElementTree.Element, problems: list[str]) -> str:
    """The job summary: the verdict, a row of test counts per shard, failed tests, each shard's steps."""
    whole = junit.totals(merged)
    verdict = "**FAILED**" if problems else "**PASSED**"
    lines = [f"## invoke ci — {len(runs)} shards merged", "", f"{verdict}: {whole.line()}", ""]
    if problems:
        lines += [*(f"- {problem}" for problem in problems), ""]
    lines += [
        "| shard | result | stack | tests | failures | errors | skipped | time |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        counts = (
            _counts(junit.totals(run.junit)) if run.junit is not None else ["no JUnit XML", "", "", "", ""]
        )
        lines.append(
            "| " + " | ".join([str(run.shard or "—"), run.outcome, f"`{run.stack}`", *counts]) + " |"
        )
    lines.append("| **all** | | | " + " | ".join(_counts(whole)) + " |")
    failed = [(run, case) for run in runs if run.junit is not None for case in junit.failed_ids(run.junit)]
    if failed:
        lines += ["", f"Failed tests ({len(failed)}):", ""]
        lines += [f"- `{step_report.cell(case)}` ({run.name})" for run, case in failed[:FAILED_SHOWN]]
        lines += [f"- … and {len(failed) - FAILED_SHOWN} more"] if len(failed) > FAILED_SHOWN else []
    for run in runs:
        lines += ["", f"### {run.name} — `{run.stack}`", ""]
        lines.append(step_report.summary_table(run.steps).rstrip())
    return "\n".join(lines) + "\n"


def _counts(totals: junit.Totals) -> list[str]:
    return [*(str(getattr(totals, key)) for key in junit.COUNTS), f"{totals.time:.1f} s"]
