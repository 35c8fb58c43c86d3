"""The one SQLAlchemy driver the project speaks: psycopg 3, synchronous, whatever a URL names."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # SQLAlchemy only where a URL is made: the harness's start-up stays light
    from sqlalchemy.engine import URL

DRIVER = "postgresql+psycopg"


def with_driver(url: str | URL) -> URL:
    """`url` with SQLAlchemy's psycopg 3 driver (postgresql://, postgres+..., and so on)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername=DRIVER)
