"""`invoke lint`'s runner: every check runs, failures are named, --fix fixes first (a fake runner)."""

from pathlib import Path

from ops.lint import CHECKS, FIXES, lint
from tests.support.paths import PROJECT_DIR


class Runs:
    def __init__(self, failing: set[str]):
        self.failing = failing
        self.argvs: list[tuple[str, ...]] = []

    def __call__(self, argv: list[str], cwd: Path) -> int:
        self.argvs.append(tuple(argv[2:]))  # after `python -m`
        return 1 if " ".join(argv[2:4]) in self.failing or argv[2] in self.failing else 0


def test_every_check_runs_even_after_one_fails_and_the_failures_are_named():
    runs, lines = Runs({"ruff check"}), []
    assert lint(Path("."), emit=lines.append, run=runs) == ["ruff check"]
    assert runs.argvs == [argv for _, argv in CHECKS]
    assert lines == ["lint: ruff check found something"]


def test_clean_code_passes_and_fix_runs_the_fixers_first():
    runs, lines = Runs(set()), []
    assert lint(Path("."), fix=True, emit=lines.append, run=runs) == []
    assert runs.argvs == [*FIXES, *(argv for _, argv in CHECKS)]
    assert lines == ["lint: ruff, ruff format and mypy are clean"]


def test_mypy_failing_alone_is_named():
    runs = Runs({"mypy"})
    assert lint(Path("."), emit=lambda _line: None, run=runs) == ["mypy"]


def test_ci_and_pre_commit_run_the_same_lint_before_the_tests():
    ci_run = (PROJECT_DIR / ".ci" / "run").read_text().splitlines()
    assert ci_run.index(".venv/bin/invoke lint") < ci_run.index(".venv/bin/invoke test")
    hooks = (PROJECT_DIR / ".pre-commit-config.yaml").read_text()
    assert "entry: invoke lint" in hooks and "pass_filenames: false" in hooks
