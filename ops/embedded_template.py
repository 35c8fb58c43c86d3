"""Which initdb template the embedded backend's new clusters come from: initdb's options and the
preparation named in the template's key (`ops.backends.spare_database`). Light on purpose: the
backend and the head start (`ops.head_start`) must name the same template."""

from __future__ import annotations

from pathlib import Path

from ops import initdb_cache
from ops.extensions import REQUIRED_EXTENSIONS
from ops.platform import Account

SUPERUSER = "postgres"
INITDB_ARGS = [
    "-U", SUPERUSER, "--auth-local=trust", "--auth-host=scram-sha-256",
    "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
]  # fmt: skip
# A template made with other extensions in its spare database is another template.
SPARE_KEY = "spare-database:" + ",".join(REQUIRED_EXTENSIONS)


def template(runner: Account | None) -> Path:
    """The template's path for this runner (needs the wheel's metadata)."""
    return initdb_cache.template_path(INITDB_ARGS, runner, SPARE_KEY)
