"""The readable side of the figures: markdown tables, docs/benchmarks.md's block, the plot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PLOT_NAME = "bench-latency.png"
SKELETON = "# Benchmarks\n\nWritten by `invoke bench`; the block below is replaced by each run.\n"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        decimals = 3 if abs(value) < 10 else 1 if abs(value) < 1000 else 0
        shown = f"{value:,.{decimals}f}"
        return shown.rstrip("0").rstrip(".") if decimals else shown
    return str(value).replace("|", "\\|")


def render(figures: dict[str, Any], plot: str | None = None) -> str:
    """The generated part of docs/benchmarks.md (also the summary printed on stdout)."""
    parts = [_facts(figures), _targets(figures)]
    if "stack" in figures:
        parts.append(_stack(figures["stack"]))
    if "dev" in figures:
        parts.append(_dev(figures["dev"]))
    if "docker_sql_ready" in figures:
        parts.append(_sql_ready(figures["docker_sql_ready"]))
    if "search" in figures:
        parts.append(_search(figures["search"]))
    if "workers" in figures:
        parts.append(_workers(figures["workers"]))
    if "metrics_cost" in figures:
        parts.append(_metrics_cost(figures["metrics_cost"]))
    if "ingest" in figures:
        parts.append(_ingest(figures["ingest"], figures.get("index_build", {})))
    if "scale" in figures:
        parts.append(_scale(figures["scale"]))
    if "memory" in figures:
        parts.append(_memory(figures["memory"]))
    if plot:
        parts.append(f"![latency: p50 and p99 per mode and concurrency, and against data size]({plot})")
    return "\n\n".join(parts) + "\n"


def _facts(figures: dict[str, Any]) -> str:
    m, o = figures["machine"], figures["options"]
    kind = "`--quick`" if o["quick"] else "full"
    return (
        f"Run of {m['date']} ({kind}, backend **{o['backend']}**, {o['repeats']} repeat(s)) "
        f"on {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
        f"PostgreSQL {m.get('postgres', '?')}, {m['platform']}."
    )


def _targets(figures: dict[str, Any]) -> str:
    rows = [
        (
            t["label"],
            t.get("bound") or f"≤ {t['limit']:g} {t['unit']}",
            t["verdict"],
            "" if t["met"] else t["note"],
        )
        for t in figures.get("targets", [])
    ]
    return "### Targets\n\n" + table(["target", "limit", "verdict", "why, and what would close it"], rows)


def _stack(stack: dict[str, Any]) -> str:
    steps = [(f"harness step `{name}`", seconds) for name, seconds in stack["cold_up_steps_s"].items()]
    bare = [(f"bare {name.removesuffix('_s').replace('_', ' ')}", s) for name, s in stack["bare_s"].items()]
    rows = [
        ("cold `up` (no data)", stack["cold_up_s"]),
        *steps,
        *bare,
        ("**ratio cold / bare**", f"{stack['ratio_cold_to_bare']}x"),
        ("warm `up` (all healthy: the no-op certificate's short path)", stack["warm_up_s"]),
        ("warm `up`, the ordinary path (certificate removed)", stack.get("warm_up_full_path_s", "—")),
        (
            "warm `up`, the ordinary path: in its steps",
            round(sum(stack.get("warm_up_steps_s", {}).values()), 4),
        ),
    ]
    return f"### Stack (median of {stack['repeats']})\n\n" + table(["what", "seconds"], rows)


SQL_READY_ROWS = (
    ("volume create", "volume_create_s"),
    ("container create", "container_create_s"),
    ("container start", "container_start_s"),
    ("port mapping read back", "port_mapping_s"),
    ("`start()` call", "start_call_s"),
    ("first SQL (after the call)", "first_sql_s"),
    ("until the entrypoint runs (engine clock)", "until_entrypoint_runs_s"),
    ("entrypoint's set-up (log)", "entrypoint_setup_s"),
    ("entrypoint's initialisation (log)", "entrypoint_init_s"),
    ("server start (log)", "server_start_s"),
    ("server ready → client's SELECT 1", "after_server_ready_s"),
)


def _sql_ready(section: dict[str, Any]) -> str:
    title = "### Docker: create → SQL-ready, harness against testcontainers"
    if "skipped" in section:
        return f"{title}\n\nSkipped: {section['skipped']}."
    phases = section["phases"]
    ways = ("harness", "replica", "testcontainers")
    rows = [(label, *(phases[way].get(key) for way in ways)) for label, key in SQL_READY_ROWS]
    rows = [row for row in rows if any(value is not None for value in row[1:])]
    rows.append(("**create → SQL-ready**", *(f"**{_cell(phases[way]['total_s'])}**" for way in ways)))
    return (
        f"{title} (median of {section['repeats']}, seconds)\n\n"
        + table(["phase", "harness", "replica of its calls", "testcontainers"], rows)
        + f"\n\n**testcontainers / harness: {section['ratio']}x** on `{section['image']}`, testcontainers "
        + f"{section['testcontainers_version']}. {section['note']}."
    )


def _search(search: dict[str, Any]) -> str:
    rows = [
        (
            c["mode"],
            c["concurrency"],
            c["requests"],
            c["errors"],
            c["p50_ms"],
            c["p90_ms"],
            c["p99_ms"],
            c["throughput_rps"],
        )
        for c in search["api"]
    ]
    raw = [
        (r["mode"], r["p50_ms"], r["p99_ms"], f"{r['api_over_raw_p50']}x", f"{r['api_over_raw_p99']}x")
        for r in search["raw_sql"]
    ]
    kinds = list(dict.fromkeys(q["kind"] for q in search["queries"]))
    by_kind = [
        (c["mode"], *(c["p50_ms_by_kind"].get(k) for k in kinds))
        for c in search["api"]
        if c["concurrency"] == 1
    ]
    return "\n\n".join(
        [
            "### Search through the API (whole Iliad, ms)\n\n"
            + table(["mode", "concurrency", "requests", "errors", "p50", "p90", "p99", "req/s"], rows),
            "Raw SQL (the same statements through psycopg, concurrency 1, ms) and the API's overhead:\n\n"
            + table(["mode", "raw p50", "raw p99", "API/raw p50", "API/raw p99"], raw),
            "p50 by kind of query at concurrency 1 (ms):\n\n" + table(["mode", *kinds], by_kind),
        ]
    )


def _workers(section: dict[str, Any]) -> str:
    rows = [
        (
            r["workers"],
            r["requests"],
            r["errors"],
            r["throughput_rps"],
            f"{r['speedup']}x" if r.get("speedup") is not None else None,
            r["p50_ms"],
            r["p99_ms"],
            r["rss_per_worker_mb"],
            r["pss_per_worker_mb"],
            r["supervisor_rss_mb"],
        )
        for r in section["runs"]
    ]
    header = ["workers", "requests", "errors", "req/s", "vs 1", "p50 ms", "p99 ms"]
    header += ["RSS/worker MB", "PSS/worker MB", "supervisor RSS MB"]
    return (
        f"### API workers ({section['mode']} search, concurrency {section['concurrency']}, whole Iliad)\n\n"
        + table(header, rows)
        + "\n\nOne worker is plain uvicorn; more are the warm server's forked workers on one port, whose "
        + "RSS counts the pages they share with the supervisor in full (PSS splits them)."
    )


def _metrics_cost(section: dict[str, Any]) -> str:
    rows = [
        (setting, run["requests"], run["errors"], run["throughput_rps"])
        for setting, run in (("on", section["on"]), ("off", section["off"]))
    ]
    return (
        f"### Metrics cost ({section['mode']} search, concurrency {section['concurrency']}, "
        f"{section['rounds']} alternating rounds)\n\n"
        + table(["METRICS", "requests", "errors", "req/s"], rows)
        + f"\n\nThroughput with metrics / without: {section['ratio']}. Two plain uvicorns on the same "
        + "database, both writing their JSON request lines; only /metrics and its counters differ."
    )


def _ingest(ingest: dict[str, Any], index: dict[str, Any]) -> str:
    rows = [
        ("whole Iliad", ingest["verses"], ingest["seconds"], ingest["verses_per_s"]),
        (f"index build ({index.get('rows')} rows)", "", index.get("seconds"), ""),
    ]
    return "### Ingest\n\n" + table(["what", "verses", "seconds", "verses/s"], rows)


def _scale(scale: dict[str, Any]) -> str:
    rows = [
        (
            f"{r['factor']}x",
            r["rows"],
            r["text"]["p50_ms"],
            r["text"]["p99_ms"],
            r["vector"]["p50_ms"],
            r["vector"]["p99_ms"],
        )
        for r in scale["runs"]
    ]
    growth = scale["growth_p50"]
    note = f" ({scale['note']})" if scale.get("note") else ""
    return (
        f"### Scale (concurrency 1, ms){note}\n\n"
        + table(["data", "verses", "text p50", "text p99", "vector p50", "vector p99"], rows)
        + f"\n\np50 growth 1x to {max(scale['factors'])}x: "
        + f"text {growth['text']}x, vector {growth['vector']}x."
    )


def _dev(dev: dict[str, Any]) -> str:
    rows = [
        (f"edit to served, p50 of {dev['edits']}", dev["edit_to_served_p50_s"]),
        (f"edit to served, max of {dev['edits']}", dev["edit_to_served_max_s"]),
        ("the API's cold start (bare uvicorn to its first 200), median of 3", dev["api_cold_start_s"]),
        ("**ratio edit-to-served p50 / cold start**", f"{dev['ratio_served_p50_to_cold']}x"),
        ("a worker killed: to /health 200 again", dev["worker_crash_to_healthy_s"]),
        ("the warm server killed: to /health 200 again", dev["server_crash_to_healthy_s"]),
        (
            f"idle CPU over {dev['idle_s']:.0f} s (dev + warm server), percent of one core",
            dev["idle_cpu_percent"],
        ),
    ]
    return "### `invoke dev` (seconds)\n\n" + table(["what", "value"], rows)


def _memory(memory: dict[str, Any]) -> str:
    rows = [
        (label, memory["idle"][key], memory["load"][key])
        for label, key in (
            ("API (uvicorn) RSS", "api_rss_mb"),
            ("PostgreSQL RSS, summed", "postgres_rss_mb"),
            ("PostgreSQL PSS, summed", "postgres_pss_mb"),
            ("PostgreSQL processes", "postgres_processes"),
        )
    ]
    return "### Memory (MB)\n\n" + table(["process", "idle", "under load (peak)"], rows)


def replace_block(document: str, block: str) -> str:
    """`document` with the text between the markers replaced by `block` (appended if no markers)."""
    fenced = f"{BEGIN}\n{block.strip()}\n{END}"
    start, end = document.find(BEGIN), document.find(END)
    if start == -1 or end < start:
        return document.rstrip() + "\n\n" + fenced + "\n"
    return document[:start] + fenced + document[end + len(END) :]


def update_docs(path: Path, block: str) -> None:
    document = path.read_text(encoding="utf-8") if path.exists() else SKELETON
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_block(document, block), encoding="utf-8")


def write_plot(figures: dict[str, Any], path: Path) -> bool:
    """Latency per mode against concurrency, and against data size; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter, ScalarFormatter
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for axes in (left, right):
        axes.set(xscale="log", yscale="log", ylabel="ms")
    for mode in dict.fromkeys(c["mode"] for c in figures["search"]["api"]):
        _p50_p99(left, mode, [(c["concurrency"], c) for c in figures["search"]["api"] if c["mode"] == mode])
    left.set(xlabel="concurrency", title="API latency, whole Iliad")
    left.set_xticks([1, 4, 16], labels=["1", "4", "16"])
    runs = figures["scale"]["runs"]
    for mode in ("text", "vector"):
        _p50_p99(right, mode, [(r["factor"], r[mode]) for r in runs])
    right.set(xlabel="copies of the Iliad", title="API latency against data, concurrency 1")
    right.set_xticks([r["factor"] for r in runs], labels=[f"{r['factor']}x" for r in runs])
    for axes in (left, right):
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.yaxis.set_major_formatter(ScalarFormatter())
        axes.yaxis.set_minor_formatter(NullFormatter())
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _p50_p99(axes: Any, label: str, points: list[tuple[int, dict[str, Any]]]) -> None:
    """p50 as a solid line and p99 dashed in the same colour."""
    xs = [x for x, _ in points]
    (line,) = axes.plot(xs, [p["p50_ms"] for _, p in points], marker="o", label=f"{label} p50")
    axes.plot(
        xs,
        [p["p99_ms"] for _, p in points],
        marker="^",
        linestyle="--",
        color=line.get_color(),
        label=f"{label} p99",
    )
