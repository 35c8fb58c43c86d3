"""No live password (the owner's or the API reader's) in any output, log or error message.

A real stack in a temporary copy of the project: `up`, `status`, `diagnose` (JSON and
table), `logs`, a failing `migrate`, a failing `ingest`, then `down`; every captured
stdout and stderr and every file the harness wrote (except the 0600 state file, whose
job is to hold them) is searched for both passwords.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

COMMANDS = [
    ("up",),
    ("status",),
    ("diagnose", "--json"),
    ("diagnose",),
    ("logs", "-n", "500"),
    ("logs", "-c", "migrate", "-n", "500"),
    ("migrate", "-r", "nope"),
    ("ingest", "--books", "x"),
    ("down",),
]


def written_files(ops_dir: Path) -> list[Path]:
    """Every file under .ops except the state file (which must hold the passwords)."""
    return [path for path in ops_dir.rglob("*") if path.is_file() and path.name != "state.json"]


def test_no_password_in_any_output_log_or_error(project) -> None:
    outputs: dict[str, str] = {}
    codes: dict[str, int] = {}
    passwords: list[str] = []
    for argv in COMMANDS:
        result = project.invoke(*argv)
        outputs[" ".join(argv)] = result.stdout + result.stderr
        codes[" ".join(argv)] = result.returncode
        if argv == ("up",):
            assert result.returncode == 0, result.stderr
            db = json.loads(project.state_file.read_text())["db"]
            passwords = [db["password"], db["reader_password"]]
    succeeding = ["up", "status", "diagnose --json", "diagnose", "logs -n 500", "logs -c migrate -n 500"]
    succeeding.append("down")
    assert {name: codes[name] for name in succeeding} == dict.fromkeys(succeeding, 0), outputs
    for failing in ("migrate -r nope", "ingest --books x"):
        assert codes[failing] != 0 and "error" in outputs[failing] and "Traceback" not in outputs[failing]
    assert len(set(passwords)) == 2 and all(len(password) >= 16 for password in passwords)

    files = written_files(project.root / ".ops")
    assert any(path.name == "api.log" for path in files) and any(path.name == "db.log" for path in files)
    texts = {**outputs, **{str(path): path.read_text(errors="replace") for path in files}}
    leaks = [where for where, text in texts.items() for password in passwords if password in text]
    assert leaks == []
