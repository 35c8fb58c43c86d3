"""The schema's Alembic head, remembered against the fingerprint of `migrations/versions`.

Working out the head means importing Alembic and reading every revision file; a no-op `up`
needs neither: while the files' sizes and mtimes match the fingerprint recorded with the head
(`ops.fingerprint`), the recorded head is the head.
"""

from __future__ import annotations

from pathlib import Path

from ops.fingerprint import Fingerprint, take
from ops.state import StackState

KEY = "migrations"


def head(project_dir: Path, state: StackState | None = None) -> str | None:
    """The head revision; `state`, when given, lends and keeps what was worked out before."""
    remembered = (state.fingerprints.get(KEY) if state else None) or {}
    before = Fingerprint.from_record(remembered.get("fingerprint"))
    now = take(project_dir, {}, ["migrations/versions"], before)
    if before is not None and before.digest == now.digest and "head" in remembered:
        return remembered["head"]
    from ops.migrate import head_revision

    found = head_revision(project_dir)
    if state is not None:
        state.fingerprints[KEY] = {"fingerprint": now.as_record(), "head": found}
    return found
