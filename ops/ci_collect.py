"""What an `invoke ci` run leaves behind: the artifacts (diagnosis, versions, JUnit XML, logs) and,
last, the ledger's documents (steps.json, summary.md) with every step, `collect` included."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ops import step_report
from ops.artifacts import ArtifactWriter, versions_text
from ops.ci_outcome import Outcome
from ops.diagnosis import engine_version
from ops.settings import COMPONENTS, Settings
from ops.shards import Shard
from ops.steps import Step


def collect(
    writer: ArtifactWriter, settings: Settings, diagnosis: dict[str, Any] | None, junit_xml: Path
) -> str:
    """Write the diagnosis, the versions, the JUnit XML and every log; the `collect` step's detail."""
    writer.json("diagnose.json", diagnosis or {"note": "diagnose did not run"})
    server = (diagnosis or {}).get("db", {}).get("server_version")
    writer.text("versions.txt", versions_text(server, engine_version()))
    if junit_xml.exists():
        writer.copy("junit.xml", junit_xml, "no JUnit XML")  # junit-KofN.xml for a shard
    declared = sorted(path.stem for path in settings.logs_dir.glob("*.log") if path.stem not in COMPONENTS)
    for name in (*COMPONENTS, *declared):  # the stack's own logs, then any declared process's
        writer.copy(f"logs/{name}.log", settings.log_file(name), f"no {name} log")
    return f"{len(writer.written)} files in {writer.root}"


def summary(
    stack: str,
    shard: Shard | None,
    artifacts: Path,
    steps: list[dict[str, Any]],
    failed: Step | None,
    backend: str | None,
) -> str:
    """summary.md, also appended to the GitHub step summary."""
    verdict = f"**FAILED** at step `{failed.name}`" if failed else "**PASSED**"
    where = [f"shard: {shard}"] if shard else []
    return step_report.summary_markdown(
        f"invoke ci — stack {stack}",
        verdict,
        steps,
        [*where, f"backend: {backend or 'unknown'}", f"artifacts: {artifacts}"],
    )


def ledger_document(
    stack: str, shard: Shard | None, steps: list[dict[str, Any]], failed: Step | None, outcome: Outcome
) -> dict[str, Any]:
    """steps.json: the result, the failing step, the exit code and every step."""
    part = {"shard": str(shard)} if shard else {}  # "K/N", as the flag
    return {
        "stack": stack,
        **part,
        "result": "failed" if failed or outcome.failure else "passed",
        "failed_step": failed.name if failed else None,
        "exit_code": outcome.exit_code,
        "steps": steps,
    }


def remove_state_dir(state_dir: Path) -> None:
    if state_dir.name.startswith("ci-"):  # only ever a CI stack's own folder
        shutil.rmtree(state_dir, ignore_errors=True)
