"""`invoke ...` with its stdout on a real pseudo-terminal, as a user at a terminal sees it."""

from __future__ import annotations

import os
import pty
import subprocess
import time

from ops.invoke_cli import invoke_argv
from tests.support.project import Project


def on_terminal(project: Project, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run `invoke ARGS` in `project` with stdout and stderr on a pty; its exit code and what it showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        invoke_argv(*args),
        cwd=project.root,
        env=project.env,
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    return code, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
