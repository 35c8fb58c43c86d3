"""`invoke up` seeds Homer and the API searches it; `invoke ingest` as a user types it."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_up_seeds_iliad_book_one_and_search_finds_accentless_queries(project):
    project.env["OPS_SEED"] = "true"
    up = project.invoke("up")
    assert up.returncode == 0, up.stderr
    assert "::STEP::seed::OK" in up.stdout
    api = f"http://127.0.0.1:{project.env['OPS_API_PORT']}"
    hits = httpx.get(f"{api}/search", params={"q": "μηνιν αειδε"}, trust_env=False, timeout=10).json()["hits"]
    assert hits[0]["urn"] == "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.1"
    works = httpx.get(f"{api}/works", trust_env=False, timeout=10).json()
    assert [(w["slug"], w["verses"]) for w in works] == [("iliad", 611)]

    again = project.invoke("up")
    assert "::STEP::seed::SKIP" in again.stdout  # a database with text is left alone

    first = project.invoke("ingest", "--books", "2")
    assert first.returncode == 0, first.stderr
    assert "877 verses inserted, 0 already present" in first.stdout
    second = project.invoke("ingest", "--books", "1-2")
    assert "0 verses inserted, 1488 already present" in second.stdout

    bad = project.invoke("ingest", "--books", "two")
    assert bad.returncode == 2 and "--books must look like 3 or 1-3" in bad.stderr
    broken = project.root / "data" / "tlg0012.tlg001.perseus-grc2.xml"
    broken.write_bytes(broken.read_bytes()[:50_000])
    truncated = project.invoke("ingest", "--books", "3")
    assert truncated.returncode == 9
    assert "tlg0012.tlg001.perseus-grc2.xml" in truncated.stderr and "line" in truncated.stderr
    assert "Traceback" not in truncated.stderr
