"""End-to-end: the invoke commands as a user types them, in a temporary copy of the project
(the `project` fixture, tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.project import Project


@pytest.fixture
def ci_project(project: Project, tmp_path: Path) -> Project:
    """The project for `invoke ci`, with no GitHub Actions variables from an outer CI run leaking in
    (and where test_ci's suites write what they saw)."""
    for key in [key for key in project.env if key.startswith("GITHUB_")]:
        project.env.pop(key)
    project.env["SECRET_OUT"] = str(tmp_path / "secret.txt")
    project.env["READY_OUT"] = str(tmp_path / "ready.txt")
    return project
