"""The stack file: one model validates it; every mistake is exit 2 naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.errors import UsageError
from ops.stackfile import SCHEMA_FILE, STACK_FILE, json_schema, load_stack_file, parse_stack
from tests.support.paths import PROJECT_DIR

PATH = Path("stack.toml")
DB = {"db": {"kind": "postgres"}}


def worker(**fields: object) -> dict[str, object]:
    return {"kind": "process", "command": ["python", "worker.py"], **fields}


def test_the_projects_own_stack_file_is_valid_and_ordered():
    stack = load_stack_file(PROJECT_DIR / STACK_FILE)
    assert stack.order == ["db", "migrate", "seed", "api"]
    assert [name for name, _ in stack.of_kind("asgi")] == ["api"]
    db = stack.components["db"]
    assert (db.database, db.role, db.extensions) == ("homer", "homer", ("vector", "pg_trgm"))


def test_a_process_with_probes_placeholders_and_dependencies():
    stack = parse_stack(
        {
            **DB,
            "api": {"kind": "asgi", "app": "app.main:app", "after": ["db"]},
            "worker": worker(
                env={"DATABASE_URL": "{db.url}", "API": "{api.url}"},
                ready={"log": "^ready$"},
                restart="on-failure",
                after=["api"],
            ),
        },
        PATH,
    )
    assert stack.order == ["db", "api", "worker"]
    assert stack.components["worker"].ready.log == "^ready$"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"db": {"kind": "postgres", "imgae": "x"}}, "db.imgae: unknown key"),
        ({"db": {"kind": "postgre"}}, "db.kind: 'postgre' is not a kind"),
        ({"db": {}}, "db.kind: missing"),
        ({**DB, "w": worker(after=["nope"])}, "w.after: 'nope' is not a declared component"),
        ({**DB, "a": worker(after=["b"]), "b": worker(after=["a"])}, "a.after: a cycle: a -> b -> a"),
        ({**DB, "a": worker(after=["a"])}, "a.after: a cycle: a -> a"),
        (
            {**DB, "w": worker(env={"U": "{api.url}"})},
            "w.env.U: {api.url}: 'api' is not a declared component",
        ),
        ({**DB, "w": worker(env={"U": "{db.urll}"})}, "w.env.U: {db.urll}: a postgres has no urll"),
        ({**DB, "w": worker(ready={"log": "("})}, "w.ready: log is not a valid regular expression"),
        ({**DB, "w": worker(ready={"tcp": "h:1", "log": "x"})}, "w.ready: give exactly one of"),
        (
            {**DB, "w": worker(restart="sometimes")},
            "w.restart: Input should be 'no', 'on-failure' or 'always'",
        ),
        ({**DB, "w": worker(command=[])}, "w.command: Tuple should have at least 1 item"),
        ({**DB, "Bad_Name": worker()}, "'Bad_Name': a component name is lower-case"),
        ({**DB, "db2": {"kind": "postgres"}}, "only one postgres component may be declared (found db, db2)"),
        ({"w": worker()}, "a postgres component is required"),
        ({**DB, "api": {"kind": "asgi", "app": "nocolon"}}, "api.app: String should match pattern"),
        ({**DB, "api": {"kind": "asgi", "app": "a:b", "workers": 0}}, "api.workers: Input should be greater"),
    ],
)
def test_every_mistake_is_one_line_naming_the_file_and_the_key(data, message):
    with pytest.raises(UsageError) as info:
        parse_stack(data, PATH)
    assert info.value.exit_code == 2
    assert info.value.one_line().startswith("stack.toml: ") and message in info.value.one_line()


def test_a_name_declared_twice_and_broken_toml_are_exit_2(tmp_path):
    twice = tmp_path / STACK_FILE
    twice.write_text('[db]\nkind = "postgres"\n[db]\nkind = "postgres"\n')
    with pytest.raises(UsageError, match=r"Cannot declare \('db',\) twice"):
        load_stack_file(twice)
    with pytest.raises(UsageError, match="no stack file"):
        load_stack_file(tmp_path / "missing.toml")


def test_the_committed_json_schema_is_the_models():
    committed = (PROJECT_DIR / SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == json_schema(), "stack.schema.json is stale: run `invoke schema`"
    assert (PROJECT_DIR / STACK_FILE).read_text().startswith(f"#:schema ./{SCHEMA_FILE}")
