"""`invoke bench` as a user types it: every section measured, the docs updated, flags checked.

Speed is reported, never asserted: these tests check that figures exist and are sane.
"""

from __future__ import annotations

import json

import pytest

from ops.bench.report import BEGIN, END

pytestmark = pytest.mark.e2e


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_bench_quick_measures_every_section_and_updates_the_docs(project):
    result = project.invoke("bench", "--quick", "--backend", "embedded", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    figures = json.loads((project.root / "artifacts" / "bench.json").read_text())

    assert figures["options"]["quick"] is True and figures["options"]["backend"] == "embedded"
    assert _positive(figures["machine"]["cores"]) and figures["machine"]["postgres"].startswith("18")
    _check_stack(figures["stack"])
    _check_search(figures)
    assert figures["ingest"]["verses"] == 15686 and _positive(figures["ingest"]["verses_per_s"])
    assert _positive(figures["index_build"]["seconds"])
    _check_scale(figures["scale"])
    _check_dev(figures["dev"], result.stdout)
    _check_workers(figures["workers"], result.stdout)
    _check_metrics_cost(figures["metrics_cost"], result.stdout)
    for moment in ("idle", "load"):
        assert all(_positive(value) for value in figures["memory"][moment].values()), figures["memory"]
    sql_ready = figures["docker_sql_ready"]
    _check_docker_sql_ready(figures, result.stdout)

    verdicts = {target["key"]: target["verdict"] for target in figures["targets"]}
    assert len(verdicts) == (14 if "skipped" in sql_ready else 15)
    assert {"text_growth", "text_growth_p99"} <= set(verdicts)
    assert all(v.startswith(("met", "missed")) for v in verdicts.values())

    docs = (project.root / "docs" / "benchmarks.md").read_text()
    assert docs.count(BEGIN) == 1 and docs.count(END) == 1
    block = docs[docs.index(BEGIN) : docs.index(END)]
    assert "### Targets" in block and "| text | 4 |" in block and "`--quick`" in block
    assert "### Search through the API" in result.stdout  # the same tables as a summary
    assert not (project.root / ".ops").exists()  # the bench's stacks live in temporary state dirs


def _check_stack(stack: dict) -> None:
    assert all(_positive(stack[key]) for key in ("cold_up_s", "warm_up_s", "ratio_cold_to_bare"))
    assert {"db", "db-ready", "migrate", "api-start", "api-health"} <= set(stack["cold_up_steps_s"])
    assert all(_positive(seconds) for seconds in stack["bare_s"].values())


def _check_search(figures: dict) -> None:
    cells = figures["search"]["api"]
    assert {(c["mode"], c["concurrency"]) for c in cells} == {
        (mode, c) for mode in ("text", "vector", "hybrid") for c in (1, 4, 16)
    }
    for cell in [*cells, *figures["search"]["raw_sql"]]:
        assert cell["errors"] == 0 and _positive(cell["requests"]), cell
        assert all(_positive(cell[key]) for key in ("p50_ms", "p90_ms", "p99_ms", "throughput_rps")), cell
    assert all(_positive(raw["api_over_raw_p50"]) for raw in figures["search"]["raw_sql"])
    kinds = {query["kind"] for query in figures["search"]["queries"]}
    assert kinds == {"accented", "accentless", "misspelled", "short", "long", "common", "beginning"}
    health = figures["search"]["health"]
    assert health["errors"] == 0 and _positive(health["p99_ms"]) and health["concurrency"] == 4
    assert {"text_p99_c4_to_health", "common_to_median"} <= {t["key"] for t in figures["targets"]}


def _check_scale(scale: dict) -> None:
    assert [(run["factor"], run["rows"]) for run in scale["runs"]] == [(1, 15686), (4, 4 * 15686)]
    for run in scale["runs"]:
        for mode in ("text", "vector"):
            assert run[mode]["errors"] == 0 and _positive(run[mode]["p50_ms"]), run
    assert _positive(scale["growth_p50"]["text"]) and "--quick" in scale["note"]


def _check_dev(dev: dict, stdout: str) -> None:
    assert len(dev["edit_to_served_s"]) == dev["edits"] == 5
    assert all(_positive(s) for s in dev["edit_to_served_s"]) and _positive(dev["api_cold_start_s"])
    assert _positive(dev["ratio_served_p50_to_cold"]) and dev["idle_cpu_percent"] >= 0
    assert _positive(dev["worker_crash_to_healthy_s"]) and _positive(dev["server_crash_to_healthy_s"])
    assert "### `invoke dev` (seconds)" in stdout


def _check_workers(workers: dict, stdout: str) -> None:
    assert (workers["mode"], workers["concurrency"]) == ("text", 16)
    assert [run["workers"] for run in workers["runs"]] == [1, 2, 4]
    for run in workers["runs"]:
        assert run["errors"] == 0 and run["running"] == run["workers"], run
        assert all(
            _positive(run[key]) for key in ("throughput_rps", "rss_per_worker_mb", "pss_per_worker_mb")
        )
        assert (run["supervisor_rss_mb"] is None) == (run["workers"] == 1), run
    assert "### API workers" in stdout


def _check_metrics_cost(section: dict, stdout: str) -> None:
    for setting in ("on", "off"):
        run = section[setting]
        assert run["errors"] == 0 and _positive(run["requests"]) and _positive(run["throughput_rps"]), run
    assert _positive(section["ratio"]) and "### Metrics cost" in stdout


def _check_docker_sql_ready(figures: dict, stdout: str) -> None:
    """Docker only, whatever --backend says: measured when an engine answers, else skipped with why."""
    sql_ready = figures["docker_sql_ready"]
    if "skipped" in sql_ready:
        assert sql_ready["skipped"] and "docker_sql_ready_ratio" not in {t["key"] for t in figures["targets"]}
    else:
        assert sql_ready["repeats"] == 1 and _positive(sql_ready["ratio"])
        for way in ("harness", "replica", "testcontainers"):
            assert _positive(sql_ready["phases"][way]["total_s"]), sql_ready
            assert _positive(sql_ready["phases"][way]["entrypoint_init_s"]), sql_ready
        assert "TESTCONTAINERS_RYUK_DISABLED=true" in sql_ready["note"]
        assert "### Docker: create → SQL-ready" in stdout


def test_bench_flags_are_one_line_errors_before_anything_runs(project):
    for args, code, message in (
        (("--repeats", "0"), 2, "error: --repeats must be a positive whole number"),
        (("--backend", "cloud"), 2, "error: invalid setting backend 'cloud'"),
        (("--backend", "external"), 2, "error: the bench cannot use --backend external"),
    ):
        result = project.invoke("bench", *args)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.strip().startswith(message) and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_bench_on_docker_without_an_engine_is_exit_3(project):
    project.env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    result = project.invoke("bench", "--quick", "--backend", "docker")
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().startswith(
        "error: no Docker engine answers at unix:///nonexistent/docker.sock"
    )
    assert "Traceback" not in result.stderr
