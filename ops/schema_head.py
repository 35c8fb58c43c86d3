"""The schema's Alembic head, remembered against the fingerprint of `migrations/versions`.

Working out the head means reading every revision file (`app.schema_head`, without Alembic; only
when that finds no single head does Alembic's own lookup say why). A no-op `up` needs neither:
while the files' sizes and mtimes match the fingerprint recorded with the head (`ops.fingerprint`),
the recorded head is the head.
"""

from __future__ import annotations

from pathlib import Path

from app.schema_head import read_head
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
    found = read_head(project_dir / "migrations" / "versions")  # one head: Alembic's own answer
    if found is None:  # none, or several (Alembic's lookup says which)
        from ops.migrate import head_revision

        found = head_revision(project_dir)
    if state is not None:
        state.fingerprints[KEY] = {"fingerprint": now.as_record(), "head": found}
    return found
