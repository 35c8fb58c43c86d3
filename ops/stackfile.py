"""The declared stack: `stack.toml` at the project root, validated by one model.

Each top-level table is a component, named by its key, of one kind: the typed built-ins
`postgres`, `alembic`, `seed` and `asgi`, or the one generic kind, `process`. `after` names
the components a component waits for; `sources` the files whose content is part of its
fingerprint. Placeholders such as `{db.url}` or `{api.url}` in a process's command and env are
replaced with the stack's endpoints when it starts.

What varies per machine (ports, backend, state dir) is not declared here: it stays in the
settings layers (invoke.yaml < OPS_* environment < flags).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from ops.dbcheck import REQUIRED_EXTENSIONS
from ops.errors import UsageError

STACK_FILE = "stack.toml"
SCHEMA_FILE = "stack.schema.json"
NAME = r"^[a-z][a-z0-9-]{0,30}$"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\}")
# What each kind offers to placeholders: `{db.url}`, `{api.url}`, ...
OFFERS = {
    "postgres": ("url", "host", "port", "database", "user"),
    "asgi": ("url", "host", "port"),
    "process": (),
    "alembic": (),
    "seed": (),
}


class Component(BaseModel):
    """What every kind has: dependencies and the files its fingerprint covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: tuple[str, ...] = Field(default=(), description="components this one waits for")
    sources: tuple[str, ...] = Field(
        default=(), description="files or folders (relative to the project) whose content it depends on"
    )


class Postgres(Component):
    """The database: PostgreSQL with the extensions the app needs."""

    kind: Literal["postgres"]
    image: str = Field(
        default="pgvector/pgvector:pg18",
        description="the docker backend's image (a machine may override it: OPS_DOCKER_IMAGE)",
    )
    extensions: tuple[str, ...] = REQUIRED_EXTENSIONS
    database: str = Field(default="homer", pattern=IDENTIFIER)
    role: str = Field(
        default="homer", pattern=IDENTIFIER, description="the owner role (the API reads as <role>_reader)"
    )


class Alembic(Component):
    """The schema: Alembic migrations, applied to head."""

    kind: Literal["alembic"]
    directory: str = Field(default="migrations", description="the Alembic directory (env.py, versions/)")


class Seed(Component):
    """Data loaded by a Python callable, `module:function(endpoint) -> str`."""

    kind: Literal["seed"]
    call: str = Field(pattern=r"^[\w.]+:[\w.]+$", description="module:function, given the owner's endpoint")
    when: Literal["empty", "always", "never"] = Field(
        default="empty", description="empty: only into an empty database"
    )


class Asgi(Component):
    """The API: an ASGI app under uvicorn."""

    kind: Literal["asgi"]
    app: str = Field(pattern=r"^[\w.]+:[\w.]+$", description="module:attribute of the ASGI app")
    health: str = Field(default="/health", pattern=r"^/", description="GET path that answers 200 when ready")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API processes on one port: above 1, the warm server forks them from one listening "
        "socket (a machine may override it: OPS_API_WORKERS)",
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for the app")


class Ready(BaseModel):
    """How a process says it is ready: exactly one probe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    http: str | None = Field(
        default=None, description="a URL that answers 2xx, e.g. http://127.0.0.1:9000/ok"
    )
    tcp: str | None = Field(
        default=None, pattern=r"^[^:\s]+:\d{1,5}$", description="host:port accepting connections"
    )
    log: str | None = Field(default=None, description="a regular expression a line of its log matches")
    command: tuple[str, ...] | None = Field(default=None, description="a command that exits 0")
    timeout: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _exactly_one(self) -> Ready:
        given = [name for name in ("http", "tcp", "log", "command") if getattr(self, name)]
        if len(given) != 1:
            got = ", ".join(given) or "none"
            raise ValueError(f"give exactly one of http, tcp, log or command (got {got})")
        if self.log is not None:
            try:
                re.compile(self.log)
            except re.error as exc:
                raise ValueError(f"log is not a valid regular expression: {exc}") from None
        return self


class Process(Component):
    """Any other long-running process: a worker, a second service."""

    kind: Literal["process"]
    command: tuple[str, ...] = Field(min_length=1, description="argv; `python` means this interpreter")
    env: dict[str, str] = Field(default_factory=dict)
    ready: Ready | None = Field(default=None, description="a readiness probe (none: ready once started)")
    restart: Literal["no", "on-failure", "always"] = "no"


AnyComponent = Annotated[Postgres | Alembic | Seed | Asgi | Process, Field(discriminator="kind")]
SINGLE_KINDS = ("postgres", "alembic", "asgi")


class StackFile(RootModel[dict[Annotated[str, Field(pattern=NAME)], AnyComponent]]):
    """The whole file: component name -> component."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _consistent(self) -> StackFile:
        components = self.root
        for kind in SINGLE_KINDS:
            named = [name for name, part in components.items() if part.kind == kind]
            if len(named) > 1:
                raise ValueError(f"only one {kind} component may be declared (found {', '.join(named)})")
        if not any(part.kind == "postgres" for part in components.values()):
            raise ValueError("a postgres component is required")
        for name, part in components.items():
            for needed in part.after:
                if needed not in components:
                    raise _KeyProblem(f"{name}.after", f"{needed!r} is not a declared component")
            for key, text in _templates(part):
                for ref, attr in PLACEHOLDER.findall(text):
                    where, shown = f"{name}.{key}", f"{{{ref}.{attr}}}"
                    if ref not in components:
                        raise _KeyProblem(where, f"{shown}: {ref!r} is not a declared component")
                    if attr not in OFFERS[components[ref].kind]:
                        raise _KeyProblem(where, f"{shown}: a {components[ref].kind} has no {attr}")
        cycle = _find_cycle({name: part.after for name, part in components.items()})
        if cycle:
            raise _KeyProblem(f"{cycle[0]}.after", f"a cycle: {' -> '.join(cycle)}")
        return self

    @property
    def components(self) -> dict[str, Any]:
        return dict(self.root)

    @cached_property
    def order(self) -> list[str]:
        """Component names in an order that respects `after` (declaration order among equals)."""
        done: list[str] = []
        pending = list(self.root)
        while pending:
            ready = next(name for name in pending if all(dep in done for dep in self.root[name].after))
            done.append(ready)
            pending.remove(ready)
        return done

    def of_kind(self, kind: str) -> list[tuple[str, Any]]:
        return [(name, part) for name, part in self.root.items() if part.kind == kind]

    def settings_layer(self) -> dict[str, Any]:
        """What the declaration says of the settings (below invoke.yaml, the environment and flags)."""
        (_, db), *_ = self.of_kind("postgres")
        layer: dict[str, Any] = {"db_name": db.database, "db_user": db.role, "docker_image": db.image}
        for _, api in self.of_kind("asgi"):
            layer["app"] = api.app
            layer["api_workers"] = api.workers
        seeds = self.of_kind("seed")
        layer["seed"] = bool(seeds) and seeds[0][1].when != "never"
        return layer


class _KeyProblem(ValueError):
    """A cross-component problem, located at a dotted key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _templates(part: Any) -> Iterator[tuple[str, str]]:
    if isinstance(part, Process):
        for index, arg in enumerate(part.command):
            yield f"command[{index}]", arg
    if isinstance(part, Process | Asgi):
        for key, value in part.env.items():
            yield f"env.{key}", value
    if isinstance(part, Process) and part.ready and part.ready.http:
        yield "ready.http", part.ready.http


def _find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A dependency cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for dep in graph.get(name, ()):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep] if dep in path else [name, dep]
            if state.get(dep) is None:
                found = visit(dep, [*path, dep])
                if found:
                    return found
        state[name] = 2
        return None

    for name in graph:
        if state.get(name) is None:
            found = visit(name, [name])
            if found:
                return found
    return None


def load_stack_file(path: Path) -> StackFile:
    """The validated stack file; UsageError (exit 2) naming the file and the key otherwise."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = f"create {STACK_FILE} at the project root (see README)"
        raise UsageError(f"{path}: no stack file", hint) from None
    except tomllib.TOMLDecodeError as exc:
        hint = "fix the file (a name declared twice is an error)"
        raise UsageError(f"{path}: not valid TOML: {exc}", hint) from None
    return parse_stack(data, path)


def parse_stack(data: dict[str, Any], path: Path) -> StackFile:
    try:
        return StackFile.model_validate(data)
    except ValidationError as exc:
        hint = "see README 'The stack file' and stack.schema.json"
        raise UsageError(f"{path}: {_describe(exc)}", hint) from None


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    context = first.get("ctx") or {}
    problem = context.get("error")
    if isinstance(problem, _KeyProblem):
        return f"{problem.key}: {problem.message}"
    parts = [str(part) for part in first["loc"] if str(part) not in _KIND_TAGS]
    key = ".".join(parts) or "the file"
    if first["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if first["loc"] and first["loc"][-1] == "[key]":
        return f"{first['input']!r}: a component name is lower-case letters, digits and dashes, from a letter"
    if first["type"] == "union_tag_invalid":
        kind = first["input"].get("kind")
        return f"{key}.kind: {kind!r} is not a kind (postgres, alembic, seed, asgi, process)"
    if first["type"] == "union_tag_not_found":
        return f"{key}.kind: missing (postgres, alembic, seed, asgi or process)"
    message = re.sub(r"\s+", " ", first["msg"]).removeprefix("Value error, ")
    return f"{key}: {message}"


_KIND_TAGS = {"postgres", "alembic", "seed", "asgi", "process", "__root__", "[key]"}


def json_schema() -> str:
    """The JSON Schema of the stack file, for editors (`#:schema ./stack.schema.json` in the TOML)."""
    schema = StackFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "homer-ops stack file (stack.toml)"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
