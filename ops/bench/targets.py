"""The issue's targets, each judged met or missed (and by how much), with a note when missed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    limit: float
    unit: str
    measured: float | None
    note: str = ""
    at_least: bool = False  # the limit is a floor (e.g. "3x faster"), not a ceiling

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    @property
    def margin(self) -> float | None:
        """measured / limit - 1: negative when under the limit, positive when over."""
        return None if self.measured is None else round(self.measured / self.limit - 1, 3)

    @property
    def bound(self) -> str:
        """The limit as the report shows it, e.g. `≤ 30 ms` or `≥ 3 x`."""
        return f"{'≥' if self.at_least else '≤'} {self.limit:g} {self.unit}"

    def verdict(self) -> str:
        if self.measured is None or self.margin is None:
            return "not measured"
        shown = f"{self.measured:.3g} {self.unit} against {self.limit:g} {self.unit}"
        if not self.margin:
            return f"met, at the limit ({shown})"
        if self.met:
            side = "over" if self.at_least else "under"
            return f"met, {abs(self.margin):.0%} {side} ({shown})"
        return f"missed by {abs(self.margin):.0%} ({shown})"

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "met": self.met,
            "margin": self.margin,
            "bound": self.bound,
            "verdict": self.verdict(),
        }


def _cell(figures: dict[str, Any], mode: str, concurrency: int) -> dict[str, Any]:
    cells = figures.get("search", {}).get("api", [])
    return next((c for c in cells if c["mode"] == mode and c["concurrency"] == concurrency), {})


def phase_excess(stack: dict[str, Any]) -> dict[str, float]:
    """Seconds the harness spends over the bare steps, per phase (start-up: outside any step)."""
    steps, bare = stack["cold_up_steps_s"], stack["bare_s"]
    db_bare = bare.get("initdb_and_start_s", bare.get("container_run_and_select1_s", 0.0))
    harness = {
        "database": steps.get("db", 0) + steps.get("db-ready", 0),
        "schema": steps.get("migrate", 0),
        "api": steps.get("api-start", 0) + steps.get("api-health", 0),
    }
    excess = {
        "database": harness["database"] - db_bare,
        "schema": harness["schema"] - bare.get("alembic_upgrade_s", 0),
        "api": harness["api"] - bare.get("uvicorn_first_200_s", 0),
        "start-up": stack["cold_up_s"] - sum(steps.values()),
    }
    return {name: round(value, 3) for name, value in excess.items()}


_CLOSE = {
    "database": "the server's provisioning (roles, database, extensions over a superuser socket) is "
    "what a bare script skips; fold it into one connection or into initdb's bootstrap",
    "schema": "migrations run in-process; the gap is Alembic's import and connection, not SQL",
    "api": "the reader role's grants and the health wait; poll /health sooner",
    "start-up": "the interpreter, invoke and the imports before the first step (pydantic for the "
    "settings, state and stack file; psycopg; psutil): keep them off the path of a step that does not "
    "need them",
}


def evaluate(figures: dict[str, Any]) -> list[Target]:
    """The targets of issue 7 against `figures` (as `run` collects them)."""
    return [
        *_stack_targets(figures.get("stack", {})),
        *_dev_targets(figures.get("dev", {})),
        _text_target(figures),
        *_search_targets(figures),
        *_scale_targets(figures.get("scale", {})),
        *_sql_ready_targets(figures.get("docker_sql_ready", {})),
        _memory_target(figures.get("memory", {}).get("load", {})),
        *_metrics_targets(figures.get("metrics_cost", {})),
    ]


def _stack_targets(stack: dict[str, Any]) -> list[Target]:
    """`up` cold against the bare steps, and warm `up`, `--list` and `--plan` against the floor."""
    if not stack:
        return []
    excess = phase_excess(stack)
    worst = max(excess, key=lambda name: excess[name])
    in_steps = sum(stack.get("warm_up_steps_s", {}).values())
    floor = stack.get("invoke_floor_s")
    return [
        Target(
            "cold_up_ratio",
            "cold `up` / the same steps by hand, in sequence",
            0.6,
            "x",
            stack["ratio_cold_to_bare"],
            f"largest excess: {worst} +{excess[worst]:.2f} s; {_CLOSE[worst]}",
        ),
        Target(
            "warm_up_to_floor",
            "warm `up` / `invoke --version`",
            2.5,
            "x",
            stack.get("ratio_warm_to_floor"),
            f"the short path checks the no-op certificate with the standard library and psutil; the "
            f"ordinary path takes {stack.get('warm_up_full_path_s', 0):.2f} s (its probes "
            f"{in_steps:.2f} s; the floor is {floor or 0:.2f} s; the rest is imports: pydantic, psycopg)",
        ),
        Target(
            "list_to_floor",
            "`invoke --list` / `invoke --version`",
            1.5,
            "x",
            stack.get("ratio_list_to_floor"),
            "tasks.py imports only ops.errors at the top",
        ),
        Target(
            "plan_to_warm",
            "`up --plan` / warm `up` (ordinary path)",
            1.0,
            "x",
            stack.get("ratio_plan_to_warm"),
            "against the ordinary warm path: it probes what that probes, without the lock or state write",
        ),
    ]


def _dev_targets(dev: dict[str, Any]) -> list[Target]:
    if not dev:
        return []
    return [
        Target(
            "dev_edit_to_served",
            "`invoke dev`: edit to served (p50) / the API's cold start",
            0.5,
            "x",
            dev.get("ratio_served_p50_to_cold"),
            f"p50 {dev.get('edit_to_served_p50_s', 0):.2f} s against a cold start of "
            f"{dev.get('api_cold_start_s', 0):.2f} s: the watcher's debounce, the fork and the app's "
            "own import",
        )
    ]


def _text_target(figures: dict[str, Any]) -> Target:
    text4, cores = _cell(figures, "text", 4), figures.get("machine", {}).get("cores", "the")
    raw: dict[str, Any] = next(
        (r for r in figures.get("search", {}).get("raw_sql", []) if r["mode"] == "text"), {}
    )
    return Target(
        "text_p99_c4_ms",
        "text search p99 at concurrency 4",
        30.0,
        "ms",
        text4.get("p99_ms"),
        f"raw SQL alone: p99 {raw.get('p99_ms')} ms at concurrency 1; the rest is the API "
        f"and queueing on {cores} cores shared by PostgreSQL, uvicorn and the load generator",
    )


def _scale_targets(scale: dict[str, Any]) -> list[Target]:
    top = max(scale.get("factors", [1]))
    return [
        Target(
            f"{mode}_growth",
            f"{mode} p50 growth, 1x to {top}x",
            2.0,
            "x",
            scale.get("growth_p50", {}).get(mode),
            _GROWTH[mode],
        )
        for mode in ("text", "vector")
    ] + [
        Target(
            "text_growth_p99",
            f"text p99 growth, 1x to {top}x",
            2.0,
            "x",
            scale.get("growth_p99", {}).get("text"),
            _GROWTH["text"],
        )
    ]


def _sql_ready_targets(sql_ready: dict[str, Any]) -> list[Target]:
    if sql_ready.get("ratio") is None:
        return []
    return [
        Target(
            "docker_sql_ready_ratio",
            "docker create→SQL-ready ≥ 3x faster than testcontainers",
            3.0,
            "x",
            sql_ready["ratio"],
            sql_ready_note(sql_ready),
            at_least=True,
        )
    ]


def _memory_target(load: dict[str, Any]) -> Target:
    return Target(
        "api_rss_mb",
        "API resident memory (peak under load)",
        150.0,
        "MB",
        load.get("api_rss_mb"),
        "one uvicorn worker: FastAPI, pydantic, SQLAlchemy and psycopg loaded, a pool of "
        "up to 12 connections",
    )


def _metrics_targets(section: dict[str, Any]) -> list[Target]:
    """Issue 17's: the instrumentation (metrics, request ids' counters) costs at most 5% of throughput."""
    if not section:
        return []
    on, off = section.get("on", {}).get("throughput_rps"), section.get("off", {}).get("throughput_rps")
    return [
        Target(
            "metrics_cost",
            "search throughput with metrics / without (METRICS=off)",
            0.95,
            "x",
            section.get("ratio"),
            f"{on} against {off} req/s at concurrency {section.get('concurrency')}, in alternating "
            "rounds on one machine: a few percent either way is noise",
            at_least=True,
        )
    ]


def _search_targets(figures: dict[str, Any]) -> list[Target]:
    """Issue 15's: text and hybrid p99 at concurrency 4 against /health's, common words against the
    median query (concurrency 1)."""
    health = figures.get("search", {}).get("health", {}).get("p99_ms")
    if not health:
        return []
    text1, text4, hybrid4 = _cell(figures, "text", 1), _cell(figures, "text", 4), _cell(figures, "hybrid", 4)
    by_kind = text1.get("p50_ms_by_kind", {})
    median = text1.get("p50_ms")
    common = by_kind.get("common")
    note = f"/health p99 {health:.1f} ms at concurrency 4, in the same run"
    hybrid_note = f"{note}; hybrid also embeds the query and reads the HNSW index"
    common_note = f"common p50 {common} ms, median {median} ms: the bounded one-word plan"
    return [
        Target("text_p99_c4_to_health", "text p99 / /health p99, concurrency 4", 3.0, "x",
               _over(text4.get("p99_ms"), health), note),
        Target("hybrid_p99_c4_to_health", "hybrid p99 / /health p99, concurrency 4", 4.0, "x",
               _over(hybrid4.get("p99_ms"), health), hybrid_note),
        Target("common_to_median", "common words' p50 / the median query's, concurrency 1", 2.0, "x",
               _over(common, median), common_note),
    ]  # fmt: skip


def _over(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else round(value / base, 2)


_GROWTH = {
    "text": "one-word queries read about the page (the bounded plan); several words still score every "
    "verse the trigram index finds, and the exact copies multiply those by the factor",
    "vector": "HNSW search cost grows with log(rows) and ef_search, not with the matches",
}


def sql_ready_note(section: dict[str, Any]) -> str:
    """Where the harness's create → SQL-ready goes, and testcontainers' wait, from the phases."""
    phases = section.get("phases", {})
    harness, tc, replica = (phases.get(way, {}) for way in ("harness", "testcontainers", "replica"))

    def s(figures: dict[str, float], key: str) -> str:
        value = figures.get(key)
        return "?" if value is None else f"{value:.2f} s"

    return (
        f"harness {s(harness, 'total_s')}: until the entrypoint runs "
        f"{s(harness, 'until_entrypoint_runs_s')} (engine create + start: "
        f"{s(replica, 'container_create_s')} + {s(replica, 'container_start_s')}), its initialisation "
        f"{s(harness, 'entrypoint_init_s')}, server start {s(harness, 'server_start_s')}, after ready "
        f"until SELECT 1 {s(harness, 'after_server_ready_s')}; testcontainers {s(tc, 'total_s')}, of which "
        f"{s(tc, 'after_server_ready_s')} after its server was ready (its exec probe polls every 1 s)"
    )
