"""`invoke dev` as a developer runs it: in a real terminal (tmux), and without one (a pipe)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ops.procs import pid_alive
from tests.support.dev import DEADLINE_S, served, start_dev, wait_for
from tests.support.project import Project, read_state
from tests.support.sources import DECLARED, WORKER

pytestmark = pytest.mark.e2e

PROBE_ROUTE = """

@app.get("/dev-probe", include_in_schema=False)
def dev_probe() -> dict[str, str]:
    return {"served": "edit %d"}
"""


def _seen(project: Project, session: Tmux) -> str:
    """The terminal and the API's log, for a failure's message."""
    log = project.root / ".ops" / "logs" / "api.log"
    api_log = log.read_text(errors="replace")[-3000:] if log.exists() else "(no api.log)"
    return f"{session.screen()}\n--- api.log ---\n{api_log}"


class Tmux:
    """One tmux session running a command in a real terminal, 160x50."""

    def __init__(self, name: str, project: Project, command: str) -> None:
        self.name = name
        env = " ".join(
            f"{key}={shlex.quote(value)}" for key, value in project.env.items() if key.startswith("OPS_")
        )
        python = shlex.quote(sys.executable)
        shell = f"cd {shlex.quote(str(project.root))} && env {env} {python} -m invoke {command}"
        # the shell stays after the command, so the terminal's state can be read once it has ended
        shell += "; echo exited=$?; sleep 600"
        self._tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "50", shell)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10, check=True).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def field(self, name: str) -> str:
        return self._tmux("display-message", "-p", "-t", self.name, f"#{{{name}}}").strip()

    def close(self) -> None:
        subprocess.run(
            ["tmux", "kill-session", "-t", self.name], capture_output=True, timeout=10, check=False
        )


@pytest.fixture
def tmux_dev(project: Project) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (`.ci/run` installs it): the terminal test needs a real terminal")
    session = Tmux(f"homer-dev-{os.getpid()}-{time.monotonic_ns()}", project, "dev")
    try:
        yield session
    finally:
        session.close()


def test_dev_in_a_terminal_serves_edits_recovers_from_a_broken_one_and_restarts_a_crash(project, tmux_dev):
    wait_for("the API to answer", lambda: served(project, "/health"), seen=lambda: _seen(project, tmux_dev))
    screen = wait_for(
        "the view to show a healthy api", lambda: "healthy" in tmux_dev.screen() and tmux_dev.screen()
    )
    for name in ("db", "migrate", "api"):
        assert name in str(screen)

    main = project.root / "app" / "main.py"
    original = main.read_text()
    main.write_text(original + PROBE_ROUTE % 1)
    assert wait_for("the edit to be served", lambda: served(project, "/dev-probe")) == {"served": "edit 1"}
    wait_for("the view to report the restart", lambda: "restarted in" in tmux_dev.screen())

    main.write_text(original + PROBE_ROUTE % 1 + "\ndef broken(:\n")
    wait_for("the syntax error in the view", lambda: "SyntaxError" in tmux_dev.screen())
    assert served(project, "/dev-probe") == {"served": "edit 1"}  # the previous code still serves

    main.write_text(original + PROBE_ROUTE % 2)
    assert wait_for("the recovery", lambda: served(project, "/dev-probe") == {"served": "edit 2"})
    wait_for("the alert to clear", lambda: "SyntaxError" not in tmux_dev.screen())

    killed = read_state(project)["api"]["pid"]
    os.kill(killed, signal.SIGKILL)
    wait_for("a new API process", lambda: read_state(project)["api"]["pid"] not in (None, killed))
    assert wait_for("the restarted API to serve", lambda: served(project, "/dev-probe")) == {
        "served": "edit 2"
    }

    tests_file = project.root / "README.md"  # nothing depends on it: it is not even watched
    pid = read_state(project)["api"]["pid"]
    tests_file.write_text(tests_file.read_text() + "\nnoted\n")
    time.sleep(1.0)
    assert read_state(project)["api"]["pid"] == pid

    tmux_dev.keys("C-c")
    wait_for("dev to end", lambda: "exited=" in tmux_dev.screen())
    assert "exited=0" in tmux_dev.screen()
    assert tmux_dev.field("cursor_flag") == "1"  # the terminal is restored: the cursor shows again
    assert "keeps running" in tmux_dev.screen()
    status = project.invoke("status")
    assert status.returncode == 0, status.stdout + status.stderr


def test_dev_without_a_terminal_prints_plain_prefixed_lines_and_sigterm_leaves_the_stack_up(project):
    process, output_file = start_dev(project)  # its output in a file: no terminal

    def api_line_shown() -> bool:  # a request once dev follows the API's log shows up as `api | ...`
        served(project, "/health")
        shown = output_file.read_text(errors="replace").splitlines()
        return any(line.split("|")[0].strip() == "api" for line in shown if "|" in line)

    wait_for("the API to answer", lambda: served(project, "/health"))
    wait_for("an `api |` line", api_line_shown, seen=lambda: output_file.read_text(errors="replace"))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=DEADLINE_S) == 0, output_file.read_text(errors="replace")
    output = output_file.read_text(errors="replace")
    assert "\x1b" not in output  # no escape codes off a terminal
    lines = output.splitlines()
    assert any(line.startswith("dev") and "|" in line for line in lines), output
    assert "keeps running" in output
    status = project.invoke("status")
    assert status.returncode == 0, status.stdout + status.stderr


def test_restart_of_the_api_gives_a_new_pid_through_the_same_code(project):
    assert project.invoke("up").returncode == 0
    before = read_state(project)["api"]["pid"]
    result = project.invoke("restart", "api")
    assert result.returncode == 0, result.stdout + result.stderr
    after = read_state(project)["api"]["pid"]
    assert after != before and served(project, "/health")
    assert "plan: api: start — not running" in result.stdout
    unknown = project.invoke("restart", "nope")
    assert unknown.returncode == 2 and "unknown component 'nope'" in unknown.stderr


def worker_pid(project: Project) -> int | None:
    record = read_state(project).get("processes", {}).get("worker")
    return record["pid"] if record and record.get("pid") and pid_alive(record["pid"]) else None


def test_dev_follows_the_stack_file_a_process_a_migration_and_a_killed_postgres(project):
    from tests.support.sources import NEW_REVISION

    process, output = start_dev(project)
    wait_for("the API to answer", lambda: served(project, "/health"))

    (project.root / "worker.py").write_text(WORKER.replace("{VERSION}", "one"))
    stack_file = project.root / "stack.toml"
    original = stack_file.read_text()
    stack_file.write_text(original + DECLARED)
    first = wait_for("the declared worker to start", lambda: worker_pid(project))
    wait_for("its prefixed log line", lambda: "connected to homer (one)" in output.read_text())

    (project.root / "worker.py").write_text(WORKER.replace("{VERSION}", "two"))
    second = wait_for(
        "the worker to restart on its edit",
        lambda: worker_pid(project) not in (None, first) and worker_pid(project),
    )
    wait_for("the new worker's line", lambda: "connected to homer (two)" in output.read_text())

    os.kill(int(str(second)), signal.SIGKILL)  # on-failure: killed is a failure
    wait_for("the crashed worker to be restarted", lambda: worker_pid(project) not in (None, second))

    head = read_state(project)["fingerprints"]["migrations"]["head"]
    warm_server = read_state(project)["api"]["pid"]
    versions = project.root / "migrations" / "versions"
    (versions / "ffff0000aaaa_plan_note.py").write_text(NEW_REVISION.format(head=head))
    wait_for(
        "the new migration to be applied",
        lambda: (served(project, "/health") or {}).get("schema") == "ffff0000aaaa",
    )

    assert read_state(project)["api"]["pid"] == warm_server  # reloaded in place, not started anew
    wait_for("the warm server's reload in the log", lambda: "warm: reloaded in" in output.read_text())

    postmaster = read_state(project)["db"]["pid"]
    os.kill(postmaster, signal.SIGKILL)
    wait_for(
        "PostgreSQL to be started again", lambda: read_state(project)["db"]["pid"] not in (None, postmaster)
    )
    wait_for("the API to be healthy again", lambda: served(project, "/health"))

    last = worker_pid(project)
    stack_file.write_text(original)
    wait_for(
        "the worker to stop once removed", lambda: "worker" not in read_state(project).get("processes", {})
    )
    assert last is None or not pid_alive(last)

    os.killpg(process.pid, signal.SIGINT)
    os.killpg(process.pid, signal.SIGINT)  # a second Ctrl-C at once
    process.wait(timeout=DEADLINE_S)
    assert process.returncode in (0, 130), output.read_text()
    read_state(project)  # still a whole JSON document
    lines = output.read_text().splitlines()
    assert not any("\x1b" in line for line in lines)
    assert any(line.split("|")[0].strip() == "worker" and "connected to homer" in line for line in lines)


def test_dev_down_stops_the_stack_when_it_ends(project):
    process, output = start_dev(project, "--down")
    wait_for("the API to answer", lambda: served(project, "/health"))
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=DEADLINE_S)
    assert process.returncode == 0, output.read_text()
    assert "stopping the stack" in output.read_text()
    status = project.invoke("status")
    assert status.returncode != 0, status.stdout
    assert served(project, "/health") is None
