"""Where a stack keeps its files, worked out from the raw settings (no validation needed), so that
the no-op check (`ops.noop`) and the validated settings agree on it."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir_of(project_dir: Path, given: str | os.PathLike[str] | None) -> Path:
    """The stack's state directory: `given` (relative to the project) or `<project>/.ops`."""
    state_dir = Path(given) if given else Path(project_dir) / ".ops"
    return state_dir if state_dir.is_absolute() else Path(project_dir) / state_dir
