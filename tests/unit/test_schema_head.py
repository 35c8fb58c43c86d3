"""app.schema_head reads the same head as Alembic's ScriptDirectory, without importing Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from app.schema_head import VERSIONS_DIR, read_head
from tests.support.paths import PROJECT_DIR


def alembic_heads(versions: Path) -> tuple[str, ...]:
    config = Config()
    config.set_main_option("script_location", str(versions.parent))
    return tuple(ScriptDirectory.from_config(config).get_heads())


def revision_file(versions: Path, name: str, down: str) -> None:
    (versions / f"{name}_step.py").write_text(
        f'"""{name}"""\nrevision = "{name}"\ndown_revision: str | None = {down}\n'
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n"
    )


def test_the_projects_head_is_alembics() -> None:
    assert (read_head(),) == alembic_heads(VERSIONS_DIR)


def test_a_chain_a_branch_and_a_merge_read_as_alembic_reads_them(tmp_path: Path) -> None:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "migrations" / "script.py.mako").write_text("")
    revision_file(versions, "aaaa", "None")
    revision_file(versions, "bbbb", '"aaaa"')
    assert (read_head(versions),) == alembic_heads(versions) == ("bbbb",)
    revision_file(versions, "cccc", '"aaaa"')  # a second head
    assert read_head(versions) is None and len(alembic_heads(versions)) == 2
    revision_file(versions, "dddd", '("bbbb", "cccc")')  # merged again
    assert (read_head(versions),) == alembic_heads(versions) == ("dddd",)


def test_the_api_imports_no_alembic() -> None:
    code = "import sys, app.main; print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_harness_works_out_a_single_head_without_alembic(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from ops import schema_head; "
        f"print(schema_head.head(Path({str(PROJECT_DIR)!r}))); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    head, loaded = done.stdout.strip().splitlines()
    assert (head,) == alembic_heads(VERSIONS_DIR) and loaded == "[]"
