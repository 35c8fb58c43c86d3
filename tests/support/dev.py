"""Driving `invoke dev` without a terminal, and asking the API it runs what it serves."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support import invoke, procs
from tests.support.project import Project, read_state

DEADLINE_S = 60


def wait_for(
    what: str, check: Callable[[], object], timeout: float = DEADLINE_S, seen: Callable[[], str] | None = None
) -> object:
    """`check()` once it is truthy, polled every 0.1 s (`tests.support.procs.wait_for`)."""
    return procs.wait_for(check, timeout, every=0.1, what=what, seen=seen)


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2, trust_env=False)
    except httpx.HTTPError:
        return None


def served(project: Project, path: str) -> dict[str, object] | None:
    try:
        url = read_state(project)["api"]["url"]
    except (OSError, ValueError, KeyError):
        return None
    response = get(f"{url}{path}")
    return response.json() if response is not None and response.status_code == 200 else None


def start_dev(project: Project, *flags: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`invoke dev FLAGS` in the background, stdout and stderr in one file (returned with it)."""
    output = project.root.parent / f"dev-{time.monotonic_ns()}.out"
    with open(output, "wb") as sink:
        process = invoke.start(
            project.root, project.env, "dev", *flags, stdout=sink, stderr=subprocess.STDOUT
        )
    project.background.append(process)
    return process, output
