"""The head revision of the migrations shipped with this code, read without importing Alembic.

`/health` compares it with the database's `alembic_version`. Alembic's own lookup
(`ScriptDirectory.get_current_head`) imports most of Alembic, 150 to 300 ms of the API's cold
start, on the path to its first 200 (a cold `up` waits for that). The revision files declare
`revision` and `down_revision` as literals at module level, so reading those with `ast` is the
whole lookup; a test checks it against Alembic's on the project's migrations and on a branched
chain.
"""

from __future__ import annotations

import ast
from pathlib import Path

VERSIONS_DIR = Path(__file__).resolve().parent.parent / "migrations" / "versions"


def read_head(versions_dir: Path = VERSIONS_DIR) -> str | None:
    """The one revision that no other revises; None when there is none, or several heads."""
    revised: set[str] = set()
    revisions: set[str] = set()
    for path in versions_dir.glob("*.py"):
        declared = _literals(path)
        revision, down = declared.get("revision"), declared.get("down_revision")
        if isinstance(revision, str):
            revisions.add(revision)
            downs = down if isinstance(down, tuple | list) else (down,)
            revised.update(d for d in downs if isinstance(d, str))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def _literals(path: Path) -> dict[str, object]:
    """The module-level `name = <literal>` assignments of a revision file."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name) and value is not None:
                try:
                    found[target.id] = ast.literal_eval(value)
                except ValueError:
                    continue
    return found
