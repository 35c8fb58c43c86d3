"""`invoke bench`'s metrics cost: the target (a floor of 0.95) and the report's section."""

from __future__ import annotations

from ops.bench import report
from ops.bench.targets import evaluate

MACHINE = {"date": "2026-01-01T00:00:00+00:00", "cores": 2, "memory_gb": 4.0, "python": "3.11"}
SECTION = {
    "mode": "text",
    "concurrency": 16,
    "rounds": 2,
    "on": {"requests": 320, "errors": 0, "throughput_rps": 93.0},
    "off": {"requests": 320, "errors": 0, "throughput_rps": 100.0},
    "ratio": 0.93,
}


def test_the_metrics_cost_is_a_floor_target_with_both_throughputs_in_its_note():
    [target] = [t for t in evaluate({"metrics_cost": SECTION}) if t.key == "metrics_cost"]
    assert target.at_least and target.met is False and target.verdict().startswith("missed by 2%")
    assert "93.0 against 100.0 req/s at concurrency 16" in target.note
    [met] = [t for t in evaluate({"metrics_cost": {**SECTION, "ratio": 1.01}}) if t.key == "metrics_cost"]
    assert met.met is True
    assert "metrics_cost" not in {t.key for t in evaluate({})}  # a run without the section


def test_the_metrics_cost_section_has_a_row_per_setting():
    figures = {
        "machine": {**MACHINE, "postgres": "18.6", "platform": "Linux"},
        "options": {"backend": "embedded", "quick": True, "repeats": 1},
        "metrics_cost": SECTION,
    }
    text = report.render(figures)
    assert "### Metrics cost (text search, concurrency 16, 2 alternating rounds)" in text
    assert "| on | 320 | 0 | 93 |" in text and "| off | 320 | 0 | 100 |" in text
    assert "Throughput with metrics / without: 0.93." in text
    assert "### Metrics cost" not in report.render({k: v for k, v in figures.items() if k != "metrics_cost"})
