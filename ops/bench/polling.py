"""The bench's one way to wait: poll a probe at a fixed interval until it answers, or fail."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ops.errors import OpsError


def until(
    probe: Callable[[], Any], what: str, error: type[OpsError], poll: float = 0.02, timeout: float = 30.0
) -> Any:
    """Call `probe` every `poll` s until it returns something truthy (returned); `error` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise error(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
