"""A warm `up` with nothing to do takes the no-op certificate's short path, and only then."""

from __future__ import annotations

import os
import signal

import pytest

from ops.noop import CERTIFICATE, NOTHING_CHANGED
from tests.support.output import step_lines
from tests.support.project import read_state

pytestmark = pytest.mark.e2e

WARM = {"db": "SKIP", "db-ready": "OK", "migrate": "SKIP", "api-start": "SKIP", "api-health": "OK"}


def up(project, **env: str):
    result = project.invoke("up") if not env else _with_env(project, env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _with_env(project, env):
    saved = dict(project.env)
    project.env.update(env)
    try:
        return project.invoke("up")
    finally:
        project.env.clear()
        project.env.update(saved)


def short(result) -> bool:
    return result.stdout.startswith(NOTHING_CHANGED)


def test_only_an_up_with_nothing_changed_takes_the_short_path(project):
    assert not short(up(project))  # cold: the full path, which leaves the certificate
    assert (project.root / ".ops" / CERTIFICATE).exists()
    again = up(project)
    assert short(again) and step_lines(again.stdout) == WARM
    assert "plan: api: keep — as the last `up` left it" in again.stdout and "***" in again.stdout
    assert read_state(project)["db"]["password"] not in again.stdout

    main = project.root / "app" / "main.py"
    main.write_text(main.read_text() + "\n# an edit\n")
    edited = up(project)
    assert not short(edited) and "plan: api: restart — app/main.py changed" in edited.stdout

    up(project)
    assert short(up(project))
    assert not short(up(project, OPS_DB_READY_TIMEOUT="25"))  # another setting: another digest

    up(project)
    assert short(up(project))
    os.kill(read_state(project)["db"]["pid"], signal.SIGKILL)
    healed = up(project)
    assert not short(healed) and step_lines(healed.stdout)["db"] == "OK"

    up(project)
    assert short(up(project))
    down = project.invoke("migrate", "-r", "-1")  # another command wrote the state file
    assert down.returncode == 0, down.stderr
    migrated = up(project)
    assert not short(migrated) and step_lines(migrated.stdout)["migrate"] == "OK"

    up(project)
    assert short(up(project))
    stack_file = project.root / "stack.toml"
    stack_file.write_text(stack_file.read_text() + "\n# a comment\n")
    assert not short(up(project))
