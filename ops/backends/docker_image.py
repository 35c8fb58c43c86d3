"""Which image the docker backend runs, and how it gets it: the configured image if present or
pullable, else the offline image (ops.image), present or buildable.

A failed pull is remembered (`ops.pull_memory`), so an air-gapped machine tries it once an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docker.errors import APIError, ImageNotFound

from ops import pull_memory
from ops.errors import BackendUnavailable
from ops.settings import Settings
from ops.steps import Emit


@dataclass(frozen=True)
class ImagePlan:
    """How the docker backend gets its image: the tag and what to do (None when it cannot)."""

    tag: str | None
    action: str  # "present", "pulled", "build" or "none"
    note: str


def plan_image(client: Any, settings: Settings, emit: Emit) -> ImagePlan:
    """The configured image if present or pullable; else the offline image, present or buildable.
    Nothing is built here; a pull that worked is kept."""
    image = settings.docker_image
    if _has_image(client, image):
        return ImagePlan(image, "present", f"{image} is present")
    remembered = pull_memory.recent_failure(image)
    failed = (
        _pull(client, image, emit) if remembered is None else f"{remembered}; remembered, not retried yet"
    )
    if failed is None:
        return ImagePlan(image, "pulled", f"pulled {image}")
    return _offline_plan(client, settings, f"{image} cannot be pulled ({failed})")


def ensure_image(client: Any, plan: ImagePlan, settings: Settings, emit: Emit) -> tuple[str, str]:
    """The image to run and a note on how it was had (built now, if so planned); BackendUnavailable
    when none can be."""
    if plan.tag is None:
        raise BackendUnavailable(
            f"no PostgreSQL image can be had: {plan.note}",
            "pull or build one (`invoke image` builds the offline image; it needs busybox-static), "
            "or use --backend embedded",
        )
    if plan.action == "build":
        from ops.image import ensure_offline_image

        emit(f"{plan.note} ...")
        tag, _ = ensure_offline_image(client, progress=emit)
        return tag, plan.note.replace("will be built", "was built")
    quiet = plan.action == "present" and plan.tag == settings.docker_image
    return plan.tag, "" if quiet else plan.note


def _pull(client: Any, image: str, emit: Emit) -> str | None:
    """Pull `image`; None when it worked, else why not (remembered)."""
    emit(f"pulling {image} ...")
    try:
        client.images.pull(image)
    except APIError as exc:
        reason = str(exc.explanation or exc)[:120]
        pull_memory.remember_failure(image, reason)
        return reason
    pull_memory.forget(image)
    return None


def _offline_plan(client: Any, settings: Settings, why: str) -> ImagePlan:
    from ops.image import offline_present, offline_tag, why_not_buildable

    if not settings.docker_offline_fallback:
        return ImagePlan(None, "none", f"{why}, and docker_offline_fallback is off")
    present = offline_present(client)
    if present:
        return ImagePlan(present, "present", f"{why}; using the offline image {present}")
    missing = why_not_buildable()
    if missing:
        return ImagePlan(None, "none", f"{why}, and the offline image cannot be built: {missing}")
    return ImagePlan(offline_tag(), "build", f"{why}; the offline image {offline_tag()} will be built")


def _has_image(client: Any, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except ImageNotFound:
        return False
