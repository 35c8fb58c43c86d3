"""JUnit XML as pytest writes it: read leniently, counted, its test ids, and several files merged into one."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

COUNTS = ("tests", "failures", "errors", "skipped")


@dataclass(frozen=True)
class Totals:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time: float = 0.0

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(getattr(self, key) + getattr(other, key) for key in (*COUNTS, "time")))

    def line(self) -> str:
        """`12 tests, 0 failures, 0 errors, 1 skipped`."""
        return ", ".join(f"{getattr(self, key)} {key}" for key in COUNTS)


def read(path: Path) -> ElementTree.Element | None:
    """The root element of a JUnit file; None when it is missing or not XML."""
    try:
        return ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None


def suites(root: ElementTree.Element) -> list[ElementTree.Element]:
    """The <testsuite> elements: the root itself, or those under a <testsuites> root."""
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def totals(root: ElementTree.Element) -> Totals:
    """The counts and time of every suite in `root`, as the suites state them."""
    found = Totals()
    for suite in suites(root):
        tests, failures, errors, skipped = (int(suite.get(key, 0)) for key in COUNTS)
        found += Totals(tests, failures, errors, skipped, float(suite.get("time", 0.0)))
    return found


def case_ids(root: ElementTree.Element) -> list[str]:
    """Each <testcase> as `classname::name` (tests/unit/test_x.py::test_y is tests.unit.test_x::test_y)."""
    return [f"{case.get('classname', '')}::{case.get('name', '')}" for case in root.iter("testcase")]


def failed_ids(root: ElementTree.Element) -> list[str]:
    """The test ids of the cases that failed or errored."""
    return [
        f"{case.get('classname', '')}::{case.get('name', '')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]


def merge(parts: Iterable[tuple[str, ElementTree.Element]]) -> ElementTree.Element:
    """One <testsuites> holding every suite of each (label, root), each suite renamed `pytest (label)`."""
    merged = ElementTree.Element("testsuites", name="pytest")
    for label, root in parts:
        for suite in suites(root):
            mine = copy.deepcopy(suite)  # the caller's tree stays as it was
            mine.set("name", f"{suite.get('name', 'pytest')} ({label})")
            merged.append(mine)
    found = totals(merged)
    for key in COUNTS:
        merged.set(key, str(getattr(found, key)))
    merged.set("time", f"{found.time:.3f}")
    return merged
