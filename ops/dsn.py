"""DATABASE_URL in either libpq form, checked and normalised; every libpq parameter kept.

Accepted: a URL (`postgresql://user:pw@host:5432/db?sslmode=verify-full&...`) or libpq's
keyword/value form (`host=... dbname=... sslmode=...`). The result is one SQLAlchemy URL for
the sync psycopg driver whose query holds every libpq parameter given (TLS modes and files,
`sslnegotiation`, `target_session_attrs`, `options`, `application_name`, ...): those reach
every connection the harness and the app make, and none is ever weakened or dropped.
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


def normalise(value: str) -> str:
    """`value` as a postgresql+psycopg URL string with all its libpq parameters, or UsageError."""
    url = _from_keywords(value) if _is_keyword_form(value) else _parse_url(value)
    backend, _, driver = url.drivername.partition("+")
    if backend not in ("postgresql", "postgres"):
        raise UsageError(f"DATABASE_URL scheme {url.drivername!r} is not PostgreSQL", EXAMPLE)
    if driver not in ("", "psycopg"):
        raise UsageError(
            f"DATABASE_URL driver {driver!r} is not supported (the harness is synchronous)",
            "use postgresql:// or postgresql+psycopg://",
        )
    url = _fields_from_query(url)
    if not url.host or not url.database:
        raise UsageError("DATABASE_URL needs a host and a database name", EXAMPLE)
    try:
        url.port  # noqa: B018 - parsing the port validates it
    except ValueError:
        raise UsageError("DATABASE_URL has a malformed port", "use HOST:5432") from None
    check_params(params_of(url))
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def params_of(url: URL) -> dict[str, str]:
    """The libpq parameters in the URL's query (a repeated one keeps its last value)."""
    return {key: value if isinstance(value, str) else value[-1] for key, value in url.query.items()}


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
    for key, field in _FIELDS.items():
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
