"""Retry classification and bounds, with zero waits."""

import psycopg
import pytest
from sqlalchemy.exc import OperationalError as SAOperationalError

from ops.errors import DatabaseError
from ops.waiting import NotReady, WaitPolicy, is_transient, retry_call

NO_WAIT = WaitPolicy(attempts=5, timeout=10, wait_initial=0, wait_max=0)


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError('connection to server at "127.0.0.1", port 5433 failed: Connection refused'),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.OperationalError("FATAL:  the database system is not yet accepting connections"),
        psycopg.errors.lookup("57P03")("the database system is starting up"),
        ConnectionRefusedError(),
        NotReady("503"),
        SAOperationalError("SELECT 1", {}, psycopg.OperationalError("Connection refused")),
    ],
)
def test_transient_errors_are_retried(exc):
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError('FATAL:  password authentication failed for user "homer"'),
        psycopg.OperationalError('FATAL:  database "nope" does not exist'),
        psycopg.errors.lookup("42601")("syntax error"),
        psycopg.errors.lookup("28P01")("invalid password"),
        psycopg.errors.UndefinedTable("relation x does not exist"),
        ValueError("bug"),
    ],
)
def test_permanent_errors_are_not_retried(exc):
    assert not is_transient(exc)


def test_transient_failures_then_success_counts_attempts():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise psycopg.OperationalError("Connection refused")
        return "ready"

    assert retry_call(flaky, NO_WAIT) == ("ready", 3)


def test_permanent_failure_is_raised_after_one_attempt():
    calls = []

    def bad_password():
        calls.append(1)
        raise psycopg.OperationalError("password authentication failed")

    with pytest.raises(psycopg.OperationalError):
        retry_call(bad_password, NO_WAIT)
    assert len(calls) == 1


def test_attempts_are_bounded():
    calls = []

    def never():
        calls.append(1)
        raise NotReady("no")

    with pytest.raises(NotReady):
        retry_call(never, NO_WAIT)
    assert len(calls) == NO_WAIT.attempts


def test_dead_server_ends_the_wait_at_once():
    calls = []

    def never():
        calls.append(1)
        raise NotReady("no")

    def alive():
        if calls:
            raise DatabaseError("PostgreSQL exited", evidence="FATAL: boom")

    with pytest.raises(DatabaseError, match="exited"):
        retry_call(never, NO_WAIT, alive)
    assert len(calls) == 1
