"""DATABASE_URL in either libpq form, checked and normalised; every libpq parameter kept.

Accepted: a URL (`postgresql://user:pw@host:5432/db?sslmode=verify-full&...`) or libpq's
keyword/value form (`host=... dbname=... sslmode=...`), each with one host or libpq's several
(`postgresql://u:pw@h1:5432,h2:5433/db?target_session_attrs=read-write`, `host=h1,h2 port=...`).
The result is one SQLAlchemy URL for the sync psycopg driver whose query holds every libpq
parameter given (TLS modes and files, `sslnegotiation`, `target_session_attrs`, `options`, ...):
those reach every connection the harness and the app make, and none is ever weakened or dropped.
Several hosts are written the way SQLAlchemy's psycopg dialect reads them, in the query:
`postgresql+psycopg://u:pw@/db?host=h1,h2&port=5432,5433`.
No I/O here: that files named by `sslrootcert` and kin exist is checked by `check_files`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.errors import UsageError

if TYPE_CHECKING:  # SQLAlchemy is imported only when a DATABASE_URL is given
    from sqlalchemy.engine import URL

EXAMPLE = "e.g. postgresql://USER@HOST:5432/DBNAME, with the password after USER and a colon"
# Parameters whose values libpq only checks when it connects: checked here, so a typo is exit 2.
CHOICES = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "sslnegotiation": ("postgres", "direct"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "gssencmode": ("disable", "prefer", "require"),
}
FILE_PARAMS = ("sslrootcert", "sslcert", "sslkey", "sslcrl")
SECRET_PARAMS = ("password", "sslpassword")
# URL fields, when the keyword/value form or the query names them.
_FIELDS = {"host": "host", "port": "port", "user": "username", "password": "password", "dbname": "database"}


DEFAULT_PORT = 5432
WRITE_ATTRS = ("read-write", "primary")  # target_session_attrs that already reach a writable server


def normalise(value: str) -> str:
    """`value` as a postgresql+psycopg URL string with all its libpq parameters, or UsageError."""
    url = _from_keywords(value) if _is_keyword_form(value) else _parse_url(_hosts_to_query(value))
    backend, _, driver = url.drivername.partition("+")
    if backend not in ("postgresql", "postgres"):
        raise UsageError(f"DATABASE_URL scheme {url.drivername!r} is not PostgreSQL", EXAMPLE)
    if driver not in ("", "psycopg"):
        raise UsageError(
            f"DATABASE_URL driver {driver!r} is not supported (the harness is synchronous)",
            "use postgresql:// or postgresql+psycopg://",
        )
    url = _fields_from_query(url)
    try:
        url.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        raise UsageError("DATABASE_URL has a malformed port", "use HOST:5432") from None
    hosts_of(url)  # every host has a port that parses
    if not (url.host or url.query.get("host")) or not url.database:
        raise UsageError("DATABASE_URL needs a host and a database name", EXAMPLE)
    check_params(params_of(url))
    from app.driver import with_driver  # SQLAlchemy only once a DSN is given: start-up stays light

    return with_driver(url).render_as_string(hide_password=False)


def params_of(url: URL) -> dict[str, str]:
    """The libpq parameters in the URL's query (a repeated one keeps its last value), without the
    host and port lists of a multi-host URL (those are `hosts_of`)."""
    multi = url.host is None and "host" in url.query
    return {
        key: value if isinstance(value, str) else value[-1]
        for key, value in url.query.items()
        if not (multi and key in ("host", "port"))
    }


def hosts_of(url: URL) -> tuple[tuple[str, int], ...]:
    """Every (host, port) the URL names, in libpq's order of trying; UsageError for a bad port list."""
    if url.host is not None or "host" not in url.query:
        return ((url.host or "127.0.0.1", url.port or DEFAULT_PORT),)
    hosts = _split(url.query["host"])
    ports = _split(url.query.get("port", ""))
    if len(ports) == 1:
        ports = ports * len(hosts)  # one port for every host, as libpq reads it
    if ports and len(ports) != len(hosts):
        raise UsageError(
            f"DATABASE_URL names {len(hosts)} hosts but {len(ports)} ports",
            "give one port per host (h1:5432,h2:5433), or one for all",
        )
    return tuple((host, _port(port)) for host, port in zip(hosts, ports or [""] * len(hosts), strict=True))


def writer_params(params: dict[str, str], multi_host: bool) -> dict[str, str]:
    """The parameters for connections that write (migrations, the seed, ingest, grants): with several
    hosts or a standby-seeking `target_session_attrs`, the read-write server is asked for."""
    wanted = params.get("target_session_attrs")
    if wanted in WRITE_ATTRS or (wanted is None and not multi_host):
        return params
    return {**params, "target_session_attrs": "read-write"}


def _split(value: Any) -> list[str]:
    joined = ",".join(value) if isinstance(value, (list, tuple)) else str(value)
    return [part.strip() for part in joined.split(",")] if joined else []


def _port(value: str) -> int:
    if not value:
        return DEFAULT_PORT
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UsageError("DATABASE_URL has a malformed port", "use HOST:5432")
    return int(value)


def _hosts_to_query(value: str) -> str:
    """libpq's several hosts in a URL's authority (`u:pw@h1:5432,h2:5433`) moved into its query
    (`?host=h1,h2&port=5432,5433`), which SQLAlchemy can parse; any other URL unchanged."""
    from urllib.parse import quote

    scheme, sep, rest = value.partition("://")
    authority, slash, tail = rest.partition("/")
    userinfo, at, hostlist = authority.rpartition("@")
    if not sep or "," not in hostlist:
        return value
    hosts, ports = [], []
    for item in hostlist.split(","):
        if item.startswith("["):  # [IPv6]:port
            host, _, port = item[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = item.partition(":")
        if not host:
            raise UsageError("DATABASE_URL has an empty host in its host list", "write h1:5432,h2:5433")
        hosts.append(host)
        ports.append(port or str(DEFAULT_PORT))
    path, _, query = tail.partition("?")
    listed = f"host={quote(','.join(hosts), safe=',:')}&port={','.join(ports)}"
    query = f"{listed}&{query}" if query else listed
    return f"{scheme}://{userinfo}{at}/{path}?{query}" if slash else f"{scheme}://{userinfo}{at}/?{query}"


def check_params(params: dict[str, str]) -> None:
    """UsageError for a parameter libpq does not know, or a value it would refuse."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import make_conninfo

    for key, value in params.items():
        try:
            make_conninfo("", **{key: value})  # libpq's own parser knows every parameter name
        except ProgrammingError:
            raise UsageError(
                f"DATABASE_URL has an unknown libpq parameter {key!r}",
                "see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS",
            ) from None
        if key in CHOICES and value not in CHOICES[key]:
            raise UsageError(
                f"DATABASE_URL: {key}={value!r} is not valid", f"choose one of {', '.join(CHOICES[key])}"
            )


def check_files(params: dict[str, str]) -> None:
    """UsageError naming a certificate, key or CRL file the parameters point to that is missing."""
    for key in FILE_PARAMS:
        value = params.get(key)
        if not value or (key == "sslrootcert" and value == "system"):
            continue
        path = Path(value).expanduser()
        if not path.is_file():
            raise UsageError(
                f"DATABASE_URL: {key} file {path} does not exist",
                "fix the path; the harness never drops a TLS setting to connect without it",
            )


def _is_keyword_form(value: str) -> bool:
    return "://" not in value and "=" in value


def _parse_url(value: str) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(value)
    except ValueError as exc:
        if "int()" in str(exc):
            raise UsageError("DATABASE_URL has a malformed port", "use HOST:5432") from None
        raise UsageError("DATABASE_URL is not a valid URL", EXAMPLE) from None
    except ArgumentError:
        raise UsageError("DATABASE_URL is not a valid URL", EXAMPLE) from None


def _from_keywords(value: str) -> URL:
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        parsed: dict[str, Any] = conninfo_to_dict(value)
    except ProgrammingError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "unparseable"
        raise UsageError(f"DATABASE_URL is not a valid libpq connection string: {detail}", EXAMPLE) from None
    from sqlalchemy.engine import URL

    return _fields_from_query(URL.create("postgresql", query={k: str(v) for k, v in parsed.items()}))


def _fields_from_query(url: URL) -> URL:
    """Move host, port, user, password and dbname from the query into the URL's own fields."""
    query = dict(url.query)
    moved: dict[str, Any] = {}
    multi_host = "," in ",".join(_split(query.get("host", "")))
    for key, field in _FIELDS.items():
        if multi_host and key in ("host", "port"):
            continue  # several hosts stay in the query, as SQLAlchemy's dialect reads them
        value = query.get(key)
        if isinstance(value, str) and "," not in value and getattr(url, field) in (None, ""):
            moved[field] = query.pop(key)
    if "password" in moved and not (url.username or moved.get("username")):
        query["password"] = moved.pop("password")  # a URL cannot hold a password without a user
    if not moved:
        return url
    if "port" in moved:
        if not moved["port"].isdigit():
            raise UsageError("DATABASE_URL has a malformed port", "use HOST:5432")
        moved["port"] = int(moved["port"])
    return url.set(**moved, query=query)
