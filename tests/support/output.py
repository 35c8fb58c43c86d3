"""Reading what a command printed: its `::STEP::` lines, the one-line error, the order of `up`'s steps."""

from __future__ import annotations

from typing import Any

DB_BRANCH = ("db", "db-ready", "migrate", "seed")
API_BRANCH = ("api-start", "api-health")
EVIDENCE_START, EVIDENCE_END = "---- last log lines ----", "------------------------"


def step_lines(output: str) -> dict[str, str]:
    """{step: OK|FAIL|SKIP} from the `::STEP::<name>::<status>` lines of a command's stdout."""
    found = {}
    for line in output.splitlines():
        if line.startswith("::STEP::"):
            _, _, name, status = line.split("::")
            found[name] = status
    return found


def in_branch_order(names: list[str]) -> bool:
    """`up`'s steps keep their order within each branch (the database's, the API's, which run side
    by side), and `api-health` begins only after the database's branch (its last step) began."""
    for branch in (DB_BRANCH, API_BRANCH):
        seen = [name for name in names if name in branch]
        if seen != [name for name in branch if name in seen]:
            return False
    last_db = max((names.index(name) for name in DB_BRANCH if name in names), default=-1)
    return "api-health" not in names or names.index("api-health") > last_db


def one_line_error(stderr: str) -> bool:
    """The documented failure shape: the last line `error: ...`, and no traceback of the harness.

    A dead process's log tail (which may hold *its* traceback) may come first, between the
    evidence markers.
    """
    own = stderr
    if EVIDENCE_START in own:
        before, _, rest = own.partition(EVIDENCE_START)
        own = before + rest.partition(EVIDENCE_END)[2]
    lines = own.strip().splitlines()
    return "Traceback" not in own and bool(lines) and lines[-1].startswith("error: ")


def report(fault: str, seconds: float, **facts: Any) -> None:
    """Print how fast a fault was noticed (run pytest with -s to see it); never asserted."""
    extra = " ".join(f"{key}={value}" for key, value in facts.items())
    print(f"\n[fault] {fault}: noticed in {seconds:.2f} s {extra}".rstrip())
