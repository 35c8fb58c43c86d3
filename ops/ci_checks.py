"""The checks `invoke ci` makes against its stack: the test suite in a child pytest, and a smoke
search. Each returns its step's detail, or raises ChecksFailed (ApiError: no answer at all)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from ops import junit, shards
from ops.errors import ApiError, ChecksFailed
from ops.shards import Shard

SMOKE_QUERY = "μηνιν αειδε"
SMOKE_URN = "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.1"
CHILD_GRACE_S = 30
NO_TESTS_COLLECTED = 5  # pytest's exit code when it ran nothing (a shard may be empty)


def run_tests(
    argv: list[str], cwd: Path, env: dict[str, str], junit_xml: Path, tests: str, shard: Shard | None
) -> str:
    """Run pytest (`argv`, writing `junit_xml`); its counts and exit code, or ChecksFailed."""
    code = _run_child(argv, cwd, env)
    where = f" (shard {shard})" if shard else ""
    detail = f"pytest {tests}{where}: {_junit_counts(junit_xml)}, exit code {code}"
    if code == NO_TESTS_COLLECTED and shard is not None:
        return detail + f": no tests fell to shard {shard}"
    if code != 0:
        raise ChecksFailed(
            f"the tests failed (pytest exit code {code})",
            f"see {shards.artifact_name('junit.xml', shard)} and the output above",
        )
    return detail


def smoke(api_url: str) -> str:
    """GET /search for the Iliad's first words: Iliad 1.1 must come first."""
    url = f"{api_url}/search"
    try:
        response = httpx.get(url, params={"q": SMOKE_QUERY}, timeout=10, trust_env=False)
    except httpx.HTTPError as exc:
        raise ApiError(
            f"the smoke search got no answer from {url} ({type(exc).__name__})", "see logs/api.log"
        ) from None
    first = _first_hit(response)
    if first.get("urn") != SMOKE_URN:
        raise ChecksFailed(
            f"smoke: GET /search?q={SMOKE_QUERY} answered {response.status_code} "
            f"without Iliad 1.1 first (first hit: {first.get('urn', 'none')})",
            "see logs/api.log",
        )
    return f"GET /search?q={SMOKE_QUERY} -> Iliad 1.1 first: {first.get('text', '')}"


def _first_hit(response: httpx.Response) -> dict[str, Any]:
    """The first hit of a /search answer ({} when it failed or is not the JSON expected)."""
    if response.status_code != 200:
        return {}
    try:
        hits = response.json().get("hits") or []
    except (ValueError, AttributeError):
        return {}
    return hits[0] if isinstance(hits, list) and hits and isinstance(hits[0], dict) else {}


def _run_child(argv: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run a child with our stdout; on Ctrl-C pass SIGINT on and give it time to clean up."""
    sys.stdout.flush()
    child = subprocess.Popen(argv, cwd=cwd, env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=CHILD_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise


def _junit_counts(path: Path) -> str:
    root = junit.read(path)
    return "no JUnit XML" if root is None else junit.totals(root).line()
