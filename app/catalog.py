"""The works this service knows: slug, CTS URN, title and the Perseus file each comes from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

LANGUAGE_CODE, LANGUAGE_NAME = "grc", "Ancient Greek"


@dataclass(frozen=True)
class WorkSpec:
    slug: str
    urn: str
    title: str
    author: str
    filename: str


WORKS: dict[str, WorkSpec] = {
    spec.slug: spec
    for spec in (
        WorkSpec(
            "iliad", "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2", "Iliad", "Homer",
            "tlg0012.tlg001.perseus-grc2.xml",
        ),
        WorkSpec(
            "odyssey", "urn:cts:greekLit:tlg0012.tlg002.perseus-grc2", "Odyssey", "Homer",
            "tlg0012.tlg002.perseus-grc2.xml",
        ),
    )
}  # fmt: skip


class WorkSlug(StrEnum):
    """The slugs of WORKS, as a type for request validation."""

    iliad = "iliad"
    odyssey = "odyssey"
