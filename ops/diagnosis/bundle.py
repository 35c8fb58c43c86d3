"""`invoke diagnose --bundle [PATH]`: one `.tar.gz` to attach to a ticket, written in any state diagnose
handles (never started, a corrupt state file, the API or the database down, everything up).

Its members, under one folder `homer-diagnose-<stack>-<UTC time>/`:
  diagnosis.json, diagnosis.txt   the report, as `diagnose --json` and `diagnose` print it
  state.json                      the state file as it is on disk (a note when there is none)
  steps.json                      the ledger: the last command's steps with their evidence
  logs/<file>                     every file in the stack's logs folder (the last 8 MB of each)
  versions.txt                    Python, the key packages, the Docker engine, PostgreSQL
  metrics.txt                     the /metrics scrape as the API served it (or why there is none)

Everything is redacted: the stack's passwords (from the state file, or dug out of an unusable one and
its set-aside `.bad`), any DSN password and any `password=...`. The archive is written to a temporary
file beside PATH with mode 0600, then renamed.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.artifacts import versions_text
from ops.diagnosis import Diagnosis, diagnosis, engine_version, render
from ops.errors import UsageError
from ops.secrets import redact, redact_tree
from ops.settings import Settings
from ops.state import StateProblem, load_state

LOG_LIMIT = 8 << 20  # bytes kept of each log: its end
_JSON_SECRET = re.compile(r'"(?:password|reader_password|sslpassword)"\s*:\s*"([^"\\]+)"')


@dataclass(frozen=True)
class Bundle:
    """What `--bundle` wrote: where, how big, its members, how long it took, and the report."""

    path: Path
    size: int
    members: list[str]
    seconds: float
    report: dict[str, Any]

    @property
    def summary(self) -> str:
        """`bundle: 9 files, 5.3 KB, 0.27 s; healthy (exit 0)`."""
        verdict = f"{self.report['verdict']} (exit {self.report['exit_code']})"
        return (
            f"bundle: {len(self.members)} files, {self.size / 1024:.1f} KB, {self.seconds:.2f} s; {verdict}"
        )


def bundle_at(settings: Settings, given: Any, cwd: Path) -> Bundle:
    """`diagnose --bundle [given]`: the archive written where `given` says (see `target`)."""
    return write_bundle(settings, target(given, settings.stack, cwd))


def target(given: Any, stack: str, cwd: Path, now: datetime | None = None) -> Path:
    """The archive's path: `given` as a file, or the default name inside `given` (a directory) or `cwd`.
    A parent that is not an existing directory is a UsageError."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = f"homer-diagnose-{stack}-{stamp}.tar.gz"
    if given in (None, True, ""):
        return _unused(cwd / name)
    path = cwd / Path(str(given)).expanduser()
    if path.is_dir():
        return _unused(path / name)
    if not path.parent.is_dir():
        raise UsageError(f"cannot write the bundle to {path}: {path.parent} is not a directory")
    return path


def _unused(path: Path) -> Path:
    """`path`, or `-2`, `-3`, ... before its suffix when a bundle of the same second is there."""
    stem = path.name.removesuffix(".tar.gz")
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{stem}-{n}.tar.gz")
    return candidate


def write_bundle(settings: Settings, path: Path) -> Bundle:
    """Diagnose, then write the archive to `path`; an unwritable place is a UsageError (exit 2)."""
    began = time.monotonic()
    found = diagnosis(settings)
    secrets = _secrets(settings, found.secrets)
    folder = path.name.removesuffix(".tar.gz").removesuffix(".tgz")
    members = {f"{folder}/{name}": content for name, content in _members(settings, found, secrets)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_tar(tmp, members)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(
            f"cannot write the bundle to {path} ({exc.strerror or type(exc).__name__})"
        ) from None
    seconds = round(time.monotonic() - began, 3)
    return Bundle(path, path.stat().st_size, list(members), seconds, found.report)


def _members(settings: Settings, found: Diagnosis, secrets: list[str]) -> list[tuple[str, str]]:
    report = found.report
    server = (report.get("db") or {}).get("server_version")
    engine = (report.get("engine") or {}).get("version") or engine_version()
    got = found.scrape
    if got is not None and got.status == 200:
        metrics = got.body
    else:
        metrics = f"(no /metrics scrape: {report['metrics']['note']})\n"
    texts = [
        ("diagnosis.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n"),
        ("diagnosis.txt", render(report) + "\n"),
        ("state.json", _file_or_note(settings.state_file, "no state file")),
        ("steps.json", _ledger(settings)),
        *((f"logs/{log.name}", _log(log)) for log in _logs(settings)),
        ("versions.txt", versions_text(server, engine)),
        ("metrics.txt", metrics),
    ]
    return [(name, redact(text, secrets)) for name, text in texts]


def _secrets(settings: Settings, known: list[str]) -> list[str]:
    """The state's secrets, and any password an unusable state file (or its `.bad`) still spells out."""
    found = list(known)
    for path in (settings.state_file, settings.state_file.with_suffix(".json.bad")):
        try:
            raw = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found += [secret for secret in _JSON_SECRET.findall(raw) if secret not in found]
    return found


def _ledger(settings: Settings) -> str:
    """steps.json: the last command's steps, in full (evidence included), or why there are none."""
    try:
        state = load_state(settings.state_file)
    except (StateProblem, OSError) as exc:
        document: dict[str, Any] = {"note": f"state file unusable: {exc}", "steps": []}
    else:
        steps = [step.model_dump(mode="json") for step in state.steps]
        document = {"last_command": state.last_command, "updated_at": state.updated_at, "steps": steps}
        document = redact_tree(document, state.secrets)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _logs(settings: Settings) -> list[Path]:
    """Every file in the stack's logs folder (rotated ones included), by name."""
    try:
        return sorted(path for path in settings.logs_dir.iterdir() if path.is_file())
    except OSError:
        return []


def _log(path: Path) -> str:
    """A log's text, or its last LOG_LIMIT bytes after a note saying so."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - LOG_LIMIT))
            data = handle.read(LOG_LIMIT)
    except OSError as exc:
        return f"(could not read {path}: {exc.strerror})\n"
    text = data.decode("utf-8", errors="replace")
    return text if size <= LOG_LIMIT else f"(the last {LOG_LIMIT} of {size} bytes)\n{text}"


def _file_or_note(path: Path, missing: str) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"({missing}: {path}: {exc.strerror})\n"


def _write_tar(path: Path, members: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    now = time.time()
    with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w:gz") as archive:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(now)
            archive.addfile(info, io.BytesIO(data))
