"""Is a connection encrypted, and with what: read from the client's own libpq (PQsslAttribute).

The client is the truth: behind a TLS-terminating proxy the server sees plaintext, so
`pg_stat_ssl` would say no. psycopg exposes `ssl_in_use` but not the protocol, so the
protocol and cipher are asked of the libpq psycopg itself loaded, through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg


@dataclass(frozen=True)
class TlsFacts:
    in_use: bool
    protocol: str | None  # e.g. "TLSv1.3"
    cipher: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if not self.in_use:
            return "not encrypted"
        return f"encrypted ({self.protocol or 'TLS'}{', ' + self.cipher if self.cipher else ''})"


def tls_facts(conn: psycopg.Connection[Any]) -> TlsFacts:
    if not conn.pgconn.ssl_in_use:
        return TlsFacts(False, None, None)
    return TlsFacts(True, ssl_attribute(conn, "protocol"), ssl_attribute(conn, "cipher"))


def ssl_attribute(conn: psycopg.Connection[Any], name: str) -> str | None:
    """libpq's PQsslAttribute for `conn` (e.g. "protocol" -> "TLSv1.3", "alpn"), None if unknown."""
    function = _ssl_attribute()
    pointer = getattr(conn.pgconn, "pgconn_ptr", None)  # the PGconn* as an integer
    if function is None or not pointer:
        return None
    value = function(ctypes.c_void_p(pointer), name.encode())
    return value.decode() if value else None


@functools.cache
def _ssl_attribute() -> Any:
    """PQsslAttribute of the libpq psycopg uses (its wheel's own copy, else the system's)."""
    for path in _libpq_candidates():
        try:
            function = ctypes.CDLL(str(path)).PQsslAttribute
        except (OSError, AttributeError):
            continue
        function.restype = ctypes.c_char_p
        function.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        return function
    return None


def _libpq_candidates() -> list[Path | str]:
    found: list[Path | str] = []
    if psycopg.pq.__impl__ == "binary":
        import psycopg_binary

        package = Path(psycopg_binary.__file__).resolve().parent
        for folder in (
            package.parent / "psycopg_binary.libs",
            package / ".dylibs",
            package.parent / "psycopg_binary.dylibs",
        ):
            found += sorted(folder.glob("libpq*"))
    system = ctypes.util.find_library("pq")
    if system:
        found.append(system)
    return found
