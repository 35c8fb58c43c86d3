"""`invoke bench`'s pure parts: percentiles, verdicts, the markdown and its markers, the flags."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import pytest

from ops.bench import memory, report
from ops.bench.load import QUERIES, drive
from ops.bench.run import options, resolve_backend
from ops.bench.stats import latency_summary, medians, percentile, ratio
from ops.bench.targets import Target, evaluate, phase_excess
from ops.errors import UsageError


def test_percentile_is_the_nearest_rank_of_the_sorted_values():
    values = [float(n) for n in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 0.5) == 51.0  # index round(0.5 * 99) = 50 of 1..100
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.0) == 1.0 and percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0


@pytest.mark.parametrize("values, fraction", [([], 0.5), ([1.0], 1.5), ([1.0], -0.1)])
def test_percentile_refuses_nothing_or_a_fraction_outside_0_to_1(values, fraction):
    with pytest.raises(ValueError):
        percentile(values, fraction)


def test_latency_summary_counts_errors_as_requests_and_leaves_percentiles_empty_without_answers():
    figures = latency_summary([10.0, 20.0, 30.0, 40.0], elapsed_s=2.0, errors=1)
    assert figures == {
        "requests": 5,
        "errors": 1,
        "p50_ms": 30.0,
        "p90_ms": 40.0,
        "p99_ms": 40.0,
        "throughput_rps": 2.0,
    }
    nothing = latency_summary([], elapsed_s=1.0, errors=3)
    assert nothing["p50_ms"] is None and nothing["p99_ms"] is None and nothing["throughput_rps"] == 0.0


def test_medians_and_ratios():
    assert medians([{"a": 1.0, "b": 5.0}, {"a": 3.0}, {"a": 2.0, "b": 7.0}]) == {"a": 2.0, "b": 6.0}
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None and ratio(1.0, 0.0) is None and ratio(1.0, None) is None


def test_a_target_says_met_or_missed_and_by_how_much():
    met = Target("k", "warm up", 1.0, "s", 0.8)
    assert met.met is True and met.margin == -0.2 and met.verdict() == "met, 20% under (0.8 s against 1 s)"
    missed = Target("k", "p99", 30.0, "ms", 39.6)
    assert missed.met is False and missed.verdict() == "missed by 32% (39.6 ms against 30 ms)"
    assert Target("k", "x", 1.0, "s", None).verdict() == "not measured"
    assert missed.as_dict()["met"] is False and missed.as_dict()["verdict"].startswith("missed by 32%")


def _figures(text_p99: float = 20.0, growth: float = 1.5) -> dict:
    cells = [
        {"mode": mode, "concurrency": c, "p50_ms": 5.0, "p99_ms": text_p99 if mode == "text" else 9.0}
        for mode in ("text", "vector", "hybrid")
        for c in (1, 4, 16)
    ]
    return {
        "stack": {
            "cold_up_s": 2.5,
            "warm_up_s": 0.3,
            "ratio_cold_to_bare": 0.6,
            "invoke_floor_s": 0.1,
            "ratio_warm_to_floor": 3.0,
            "ratio_list_to_floor": 1.2,
            "ratio_plan_to_warm": 0.9,
            "cold_up_steps_s": {
                "db": 0.8,
                "db-ready": 0.1,
                "migrate": 0.1,
                "api-start": 0.1,
                "api-health": 0.7,
            },
            "bare_s": {
                "initdb_and_start_s": 0.7,
                "alembic_upgrade_s": 0.5,
                "uvicorn_first_200_s": 0.8,
                "total_s": 2.0,
            },
        },
        "search": {"api": cells, "raw_sql": [{"mode": "text", "p50_ms": 3.0, "p99_ms": 8.0}]},
        "scale": {
            "factors": [1, 4, 16],
            "growth_p50": {"text": growth, "vector": 1.1},
            "growth_p99": {"text": 1.9, "vector": 1.2},
        },
        "memory": {"load": {"api_rss_mb": 90.0}},
    }


def test_the_targets_of_the_issue_are_judged_from_the_figures():
    targets = {t.key: t for t in evaluate(_figures(text_p99=45.0, growth=3.0))}
    assert set(targets) == {
        "cold_up_ratio",
        "warm_up_to_floor",
        "list_to_floor",
        "plan_to_warm",
        "text_p99_c4_ms",
        "text_growth",
        "text_growth_p99",
        "vector_growth",
        "api_rss_mb",
    }
    assert targets["cold_up_ratio"].verdict() == "met, at the limit (0.6 x against 0.6 x)"
    assert targets["warm_up_to_floor"].verdict() == "missed by 20% (3 x against 2.5 x)"
    assert targets["list_to_floor"].met and targets["plan_to_warm"].met
    assert targets["api_rss_mb"].met and targets["vector_growth"].met
    assert targets["text_p99_c4_ms"].verdict().startswith("missed by 50%")
    assert "raw SQL alone: p99 8.0 ms" in targets["text_p99_c4_ms"].note
    assert (
        targets["text_growth"].label == "text p50 growth, 1x to 16x" and targets["text_growth"].met is False
    )
    assert targets["text_growth_p99"].label == "text p99 growth, 1x to 16x"
    assert targets["text_growth_p99"].verdict() == "met, 5% under (1.9 x against 2 x)"


def test_phase_excess_names_where_the_harness_spends_more_than_the_bare_steps():
    excess = phase_excess(_figures()["stack"])
    assert excess == {"database": 0.2, "schema": -0.4, "api": 0.0, "start-up": 0.7}
    worst = next(t for t in evaluate(_figures()) if t.key == "cold_up_ratio").note
    assert worst.startswith("largest excess: start-up +0.70 s")


def _full_figures() -> dict:
    figures = _figures()
    figures["machine"] = {
        "date": "2026-01-01T00:00:00+00:00",
        "cores": 2,
        "memory_gb": 4.0,
        "python": "3.11",
        "postgres": "18.6",
        "platform": "Linux",
    }
    figures["options"] = {"backend": "embedded", "quick": True, "repeats": 1}
    figures["stack"]["repeats"] = 1
    for cell in figures["search"]["api"]:
        cell.update(requests=30, errors=0, p90_ms=7.0, throughput_rps=100.0, p50_ms_by_kind={"short": 4.0})
    figures["search"]["raw_sql"] = [
        {"mode": m, "p50_ms": 3.0, "p99_ms": 8.0, "api_over_raw_p50": 1.7, "api_over_raw_p99": 1.5}
        for m in ("text", "vector", "hybrid")
    ]
    figures["search"]["queries"] = [{"kind": kind, "q": q} for kind, q in QUERIES]
    figures["ingest"] = {"verses": 15686, "seconds": 6.2, "verses_per_s": 2530.0}
    figures["index_build"] = {"rows": 15686, "seconds": 2.9}
    point = {"p50_ms": 5.0, "p99_ms": 9.0}
    figures["scale"].update(
        runs=[{"factor": f, "rows": 15686 * f, "text": point, "vector": point} for f in (1, 4)],
        factors=[1, 4],
        note="--quick: 1x, 4x only",
        growth_p50={"text": 2.3, "vector": 1.2},
    )
    stats = {"api_rss_mb": 83.0, "postgres_rss_mb": 90.0, "postgres_pss_mb": 35.0, "postgres_processes": 11}
    figures["memory"] = {"idle": stats, "load": stats}
    figures["targets"] = [t.as_dict() for t in evaluate(figures)]
    return figures


def test_the_markdown_has_every_section_and_a_note_only_where_a_target_is_missed():
    text = report.render(_full_figures(), plot="bench-latency.png")
    for heading in ("### Targets", "### Stack", "### Search", "### Ingest", "### Scale", "### Memory"):
        assert heading in text
    assert "| text | 4 | 30 | 0 | 5 | 7 | 20 | 100 |" in text
    assert "(--quick: 1x, 4x only)" in text and "p50 growth 1x to 4x: text 2.3x" in text
    missed = next(line for line in text.splitlines() if line.startswith("| text p50 growth"))
    assert "missed by 15%" in missed and "several words still score every verse" in missed
    met = next(line for line in text.splitlines() if line.startswith("| `invoke --list`"))
    assert met.endswith("|  |")  # no note for a met target
    assert "![latency" in text and "(bench-latency.png)" in text


def test_the_workers_section_has_a_row_per_count_with_throughput_and_memory_per_worker():
    run = {"requests": 160, "errors": 0, "p50_ms": 40.0, "p99_ms": 90.0, "pss_per_worker_mb": 30.0}
    figures = _full_figures()
    figures["workers"] = {
        "mode": "text",
        "concurrency": 16,
        "runs": [
            {**run, "workers": 1, "throughput_rps": 100.0, "speedup": 1.0, "rss_per_worker_mb": 86.0,
             "supervisor_rss_mb": None},
            {**run, "workers": 2, "throughput_rps": 150.0, "speedup": 1.5, "rss_per_worker_mb": 75.5,
             "supervisor_rss_mb": 78.7},
        ],
    }  # fmt: skip
    text = report.render(figures)
    assert "### API workers (text search, concurrency 16, whole Iliad)" in text
    assert "| 1 | 160 | 0 | 100 | 1.0x | 40 | 90 | 86 | 30 | — |" in text
    assert "| 2 | 160 | 0 | 150 | 1.5x | 40 | 90 | 75.5 | 30 | 78.7 |" in text
    assert "### API workers" not in report.render(_full_figures())  # a run without the section


def test_the_generated_block_is_replaced_between_the_markers_and_the_rest_kept():
    document = f"# Benchmarks\n\nMethod.\n\n{report.BEGIN}\nold table\n{report.END}\n\n## Analysis\n\nKept.\n"
    once = report.replace_block(document, "new table\n")
    assert (
        once
        == f"# Benchmarks\n\nMethod.\n\n{report.BEGIN}\nnew table\n{report.END}\n\n## Analysis\n\nKept.\n"
    )
    assert report.replace_block(once, "new table\n") == once  # idempotent
    appended = report.replace_block("# Doc without markers\n", "table")
    assert appended == f"# Doc without markers\n\n{report.BEGIN}\ntable\n{report.END}\n"
    assert report.replace_block(appended, "table") == appended


def test_update_docs_creates_the_page_when_missing(tmp_path):
    page = tmp_path / "docs" / "benchmarks.md"
    report.update_docs(page, "the table")
    report.update_docs(page, "the table")
    text = page.read_text()
    assert text.startswith("# Benchmarks") and text.count(report.BEGIN) == 1 and "the table" in text


def test_the_plot_is_a_png_when_matplotlib_is_installed(tmp_path):
    pytest.importorskip("matplotlib")
    figures = _full_figures()
    figures["search"]["api"] = [{**c, "p50_ms": 5.0 * c["concurrency"]} for c in figures["search"]["api"]]
    assert report.write_plot(figures, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("repeats", ["0", "-1", "x", "1.5", ""])
def test_repeats_must_be_a_positive_whole_number(repeats):
    with pytest.raises(UsageError) as caught:
        options(False, repeats)
    assert caught.value.exit_code == 2 and "--repeats must be a positive whole number" in caught.value.message


def test_quick_is_bounded_and_lighter_than_the_full_run():
    quick, full = options(True, None), options(False, None)
    assert (quick.repeats, quick.factors) == (1, (1, 4)) and (full.repeats, full.factors) == (3, (1, 4, 16))
    assert quick.requests < full.requests and quick.deadline_s < full.deadline_s
    assert quick.worker_requests < full.worker_requests and quick.metrics_requests < full.metrics_requests
    assert options(True, "2").repeats == 2


def test_the_external_backend_cannot_be_benchmarked_and_embedded_needs_no_engine():
    with pytest.raises(UsageError) as caught:
        resolve_backend("external")
    assert caught.value.exit_code == 2
    assert resolve_backend("embedded") == ("embedded", None)


KINDS = {"accented", "accentless", "misspelled", "short", "long", "common", "beginning"}


def test_the_query_set_has_every_kind_in_each_cycle_of_seven():
    kinds = [kind for kind, _ in QUERIES]
    assert set(kinds) == KINDS
    assert all(len(set(kinds[i : i + 7])) == 7 for i in range(0, len(kinds), 7))


def test_drive_is_bounded_in_requests_and_time_and_counts_failures():
    calls: list[int] = []

    @contextlib.contextmanager
    def opener():
        def call(index: int) -> bool:
            calls.append(index)
            return index % 7 != 2  # the misspelled queries "fail"

        yield call

    figures = drive(opener, concurrency=4, requests=63, deadline_s=30)
    assert len(calls) == 63 and figures["requests"] == 63 and figures["errors"] == 9
    assert "misspelled" not in figures["p50_ms_by_kind"] and "short" in figures["p50_ms_by_kind"]

    @contextlib.contextmanager
    def slow():
        yield lambda _index: time.sleep(0.05) is None

    capped = drive(slow, concurrency=2, requests=10_000, deadline_s=0.2)
    assert 0 < capped["requests"] < 100  # stopped by the deadline, not the request count


def test_memory_reads_resident_sizes_and_children_from_proc():
    assert memory.rss_kb(os.getpid()) > 0 and memory.pss_kb(os.getpid()) > 0
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in memory.children(os.getpid())
        pids = memory.postmaster_and_children(os.getpid())()
        snap = memory.snapshot(child.pid, lambda: pids)
        assert snap["api_rss_mb"] > 0 and snap["postgres_processes"] == len(pids) >= 2
    finally:
        child.kill()
        child.wait()
    assert memory.rss_kb(child.pid) == 0  # gone: counted as nothing


def test_a_floor_target_is_met_at_or_above_its_limit():
    met = Target("k", "3x faster", 3.0, "x", 3.6, at_least=True)
    assert met.met is True and met.bound == "≥ 3 x" and met.verdict() == "met, 20% over (3.6 x against 3 x)"
    missed = Target("k", "3x faster", 3.0, "x", 2.4, at_least=True)
    assert missed.met is False and missed.verdict() == "missed by 20% (2.4 x against 3 x)"
    assert Target("k", "x", 3.0, "x", 3.0, at_least=True).verdict() == "met, at the limit (3 x against 3 x)"
    assert Target("k", "p99", 30.0, "ms", 20.0).bound == "≤ 30 ms"
    assert missed.as_dict()["bound"] == "≥ 3 x"


def _sql_ready(ratio: float = 3.5) -> dict:
    phase = {
        "start_call_s": 0.2,
        "first_sql_s": 0.2,
        "total_s": 0.4,
        "until_entrypoint_runs_s": 0.18,
        "entrypoint_setup_s": 0.01,
        "entrypoint_init_s": 0.1,
        "server_start_s": 0.02,
        "after_server_ready_s": 0.09,
    }
    replica = {**phase, "container_create_s": 0.01, "container_start_s": 0.17, "total_s": 0.37}
    testcontainers = {**phase, "start_call_s": 1.39, "total_s": 0.4 * ratio, "after_server_ready_s": 0.99}
    return {
        "image": "homer-ops/postgres-offline:18.6.3",
        "repeats": 3,
        "testcontainers_version": "4.15.0",
        "note": "Ryuk disabled",
        "ratio": ratio,
        "phases": {"harness": phase, "replica": replica, "testcontainers": testcontainers},
    }


def test_the_docker_sql_ready_target_is_a_floor_with_the_phases_as_its_note():
    figures = {**_figures(), "docker_sql_ready": _sql_ready(2.5)}
    target = next(t for t in evaluate(figures) if t.key == "docker_sql_ready_ratio")
    assert target.at_least and target.limit == 3.0 and target.met is False
    assert target.label == "docker create→SQL-ready ≥ 3x faster than testcontainers"
    assert "its initialisation 0.10 s" in target.note and "testcontainers 1.00 s" in target.note
    met = next(
        t for t in evaluate({**_figures(), "docker_sql_ready": _sql_ready()}) if t.key.startswith("docker")
    )
    assert met.met is True
    skipped = {**_figures(), "docker_sql_ready": {"skipped": "no Docker engine answers"}}
    assert "docker_sql_ready_ratio" not in {t.key for t in evaluate(skipped)}


def test_the_docker_sql_ready_section_has_every_way_side_by_side_or_says_why_it_was_skipped():
    figures = {**_full_figures(), "docker_sql_ready": _sql_ready()}
    figures["targets"] = [t.as_dict() for t in evaluate(figures)]
    text = report.render(figures)
    assert "### Docker: create → SQL-ready, harness against testcontainers (median of 3, seconds)" in text
    assert "| phase | harness | replica of its calls | testcontainers |" in text
    assert "| container start | — | 0.17 | — |" in text
    assert "| **create → SQL-ready** | **0.4** | **0.37** | **1.4** |" in text
    assert "**testcontainers / harness: 3.5x**" in text and "Ryuk disabled" in text
    target = next(line for line in text.splitlines() if line.startswith("| docker create→SQL-ready"))
    assert "| ≥ 3 x | met, 17% over" in target
    skipped = report.render({**_full_figures(), "docker_sql_ready": {"skipped": "no Docker engine answers"}})
    assert "Skipped: no Docker engine answers." in skipped


def test_the_containers_clocks_split_a_start_into_phases():
    from ops.bench.sqlready import clocks_from, parse_engine_time

    assert parse_engine_time("2026-12-01T10:00:00.123456789Z") == pytest.approx(1796119200.123457, abs=1e-6)
    assert parse_engine_time("2026-12-01T10:00:00Z") == 1796119200.0
    logs = "\n".join(
        [
            "2026-12-01T10:00:00.210000000Z 2026-12-01 10:00:00 UTC [entrypoint] initialising a new cluster",
            "2026-12-01T10:00:00.310000000Z 2026-12-01 10:00:00 UTC [entrypoint] initialisation complete",
            "2026-12-01T10:00:00.330000000Z LOG:  database system is ready to accept connections",
            "garbage without a timestamp: database system is ready to accept connections",
        ]
    )
    began = parse_engine_time("2026-12-01T10:00:00Z")
    phases = clocks_from(began, began + 0.4, "2026-12-01T10:00:00.200000000Z", logs)
    assert phases == pytest.approx(
        {
            "until_entrypoint_runs_s": 0.2,
            "entrypoint_setup_s": 0.01,
            "entrypoint_init_s": 0.1,
            "server_start_s": 0.02,
            "after_server_ready_s": 0.07,
        },
        abs=1e-3,
    )
    assert clocks_from(began, began + 1, "not a time", logs) == {}
    assert clocks_from(began, began + 1, "2026-12-01T10:00:00.2Z", "") == {"until_entrypoint_runs_s": 0.2}


def test_the_docker_section_is_skipped_with_a_reason_without_an_engine():
    from ops.bench.sqlready import why_not

    assert why_not(None) == "no Docker engine answers"
    assert why_not(object()) is None  # testcontainers is in the dev extra
