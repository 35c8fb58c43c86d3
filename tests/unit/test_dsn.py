"""DATABASE_URL in both libpq forms: every parameter kept, bad ones refused with exit 2, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from ops.dsn import check_files, hosts_of, normalise, params_of
from ops.endpoint import Endpoint
from ops.errors import UsageError
from ops.secrets import MASK, mask_dsn, redact, stack_passwords

TLS_QUERY = (
    "sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/c.pem&sslkey=/k.pem&sslnegotiation=direct"
    "&target_session_attrs=read-write&options=-c%20search_path%3Dhomer&application_name=mine"
)


def test_every_libpq_parameter_of_a_url_is_kept():
    url = make_url(normalise(f"postgresql://u:pw@db.example:5433/homer?{TLS_QUERY}"))
    assert url.drivername == "postgresql+psycopg" and (url.host, url.port, url.database) == (
        "db.example",
        5433,
        "homer",
    )
    assert params_of(url) == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ca.pem",
        "sslcert": "/c.pem",
        "sslkey": "/k.pem",
        "sslnegotiation": "direct",
        "target_session_attrs": "read-write",
        "options": "-c search_path=homer",
        "application_name": "mine",
    }


def test_the_keyword_value_form_is_accepted_and_becomes_the_same_url():
    keywords = normalise("host=db.example port=5433 dbname=homer user=u password='p w' sslmode=verify-ca")
    url = make_url(keywords)
    assert (url.host, url.port, url.database, url.username, url.password) == (
        "db.example",
        5433,
        "homer",
        "u",
        "p w",
    )
    assert params_of(url) == {"sslmode": "verify-ca"}


def test_an_endpoint_hands_every_parameter_to_psycopg_and_sqlalchemy():
    params = {"sslmode": "require", "options": "-c x=1", "application_name": "mine", "connect_timeout": "9"}
    endpoint = Endpoint("127.0.0.1", 5432, "u", "pw", "db", params)
    kwargs = endpoint.connect_kwargs(timeout=2)
    assert kwargs["sslmode"] == "require" and kwargs["options"] == "-c x=1"
    assert kwargs["application_name"] == "mine"  # the user's name wins over the harness's
    assert kwargs["connect_timeout"] == 2  # the harness's bound on waiting holds
    assert params_of(make_url(endpoint.url())) == params


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://u@h/db?sslmdoe=require", "unknown libpq parameter 'sslmdoe'"),
        ("host=h dbname=db bogus=1", "not a valid libpq connection string"),
        ("postgresql://u@h/db?sslmode=verify", "sslmode='verify' is not valid"),
        ("postgresql://u@h/db?sslnegotiation=tls", "sslnegotiation='tls' is not valid"),
        ("postgresql://u@h/db?target_session_attrs=primary-ish", "target_session_attrs"),
    ],
)
def test_bad_parameters_are_one_clear_usage_error(dsn, message):
    with pytest.raises(UsageError, match=message) as info:
        normalise(dsn)
    assert info.value.exit_code == 2 and "\n" not in info.value.one_line()


def test_a_missing_certificate_file_is_named(tmp_path: Path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    check_files({"sslrootcert": str(ca)})
    check_files({"sslrootcert": "system"})  # libpq's own: the system's trusted roots
    with pytest.raises(UsageError, match=f"sslkey file {tmp_path / 'nope.key'} does not exist"):
        check_files({"sslrootcert": str(ca), "sslkey": str(tmp_path / "nope.key")})


def test_every_form_of_the_password_is_masked():
    forms = [
        "postgresql://u:hunter2@h/db",
        "postgresql://u@h/db?password=hunter2",
        "host=h password=hunter2 dbname=db",
        "PGPASSWORD=hunter2",
        "sslpassword=hunter2",
    ]
    for text in forms:
        assert "hunter2" not in redact(text), text
    assert "hunter2" not in mask_dsn("postgresql+psycopg://u@h/db?password=hunter2&sslmode=require")
    assert MASK in mask_dsn("postgresql+psycopg://u:hunter2@h/db?sslmode=require")


def test_a_key_passphrase_among_the_parameters_is_a_stack_secret():
    db = {"password": "owner-pw", "params": {"sslpassword": "key-pass", "sslmode": "verify-full"}}
    assert set(stack_passwords(db)) == {"owner-pw", "key-pass"}


# --- several hosts (libpq's multi-host DSN) ----------------------------------------------------

MULTI = (
    "postgresql://u:p%40w@10.0.0.1:5432,10.0.0.2:5433/homer?target_session_attrs=read-write&sslmode=require"
)


def test_a_multi_host_url_keeps_every_host_in_order_and_every_parameter():
    normalised = normalise(MULTI)
    url = make_url(normalised)
    assert url.host is None and url.password == "p@w"
    assert hosts_of(url) == (("10.0.0.1", 5432), ("10.0.0.2", 5433))
    assert params_of(url) == {"target_session_attrs": "read-write", "sslmode": "require"}
    endpoint = Endpoint.from_url(normalised)
    assert endpoint.hosts == (("10.0.0.1", 5432), ("10.0.0.2", 5433))
    assert endpoint.where == "10.0.0.1:5432,10.0.0.2:5433"
    kwargs = endpoint.connect_kwargs()
    assert (kwargs["host"], kwargs["port"]) == ("10.0.0.1,10.0.0.2", "5432,5433")
    assert kwargs["target_session_attrs"] == "read-write" and kwargs["sslmode"] == "require"
    assert Endpoint.from_url(endpoint.url()) == endpoint  # the URL it hands the app reads back the same


@pytest.mark.parametrize(
    "dsn",
    [
        "host=10.0.0.1,10.0.0.2 port=5432,5433 dbname=homer user=u",
        "postgresql://u@/homer?host=10.0.0.1,10.0.0.2&port=5432,5433",
        "postgresql://u@10.0.0.1:5432,[::1]:5433/homer",
    ],
)
def test_every_form_of_several_hosts_is_accepted(dsn):
    hosts = hosts_of(make_url(normalise(dsn)))
    assert len(hosts) == 2 and hosts[0] == ("10.0.0.1", 5432) and hosts[1][1] == 5433


def test_one_port_for_several_hosts_applies_to_each():
    assert hosts_of(make_url(normalise("host=a,b port=6000 dbname=d"))) == (("a", 6000), ("b", 6000))


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://u@h1:5432,h2:x/db", "malformed port"),
        ("postgresql://u@h1:5432,,h2/db", "empty host"),
        ("host=h1,h2 port=1,2,3 dbname=d", "names 2 hosts but 3 ports"),
    ],
)
def test_a_bad_host_list_is_one_usage_error(dsn, message):
    with pytest.raises(UsageError, match=message) as info:
        normalise(dsn)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("given", "writes"),
    [
        (None, "read-write"),  # several hosts: writes need the primary
        ("prefer-standby", "read-write"),
        ("any", "read-write"),
        ("primary", "primary"),  # already a writable server
        ("read-write", "read-write"),
    ],
)
def test_writes_ask_for_the_read_write_server(given, writes):
    params = {"target_session_attrs": given} if given else {}
    endpoint = Endpoint("h1", 5432, "u", "pw", "db", params, more_hosts=(("h2", 5433),))
    assert endpoint.for_writes().params["target_session_attrs"] == writes
    assert endpoint.for_writes().hosts == endpoint.hosts


def test_a_single_plain_host_is_written_to_as_given():
    endpoint = Endpoint("h1", 5432, "u", "pw", "db", {"sslmode": "require"})
    assert endpoint.for_writes() is endpoint
    standby_seeking = Endpoint("h1", 5432, "u", "pw", "db", {"target_session_attrs": "prefer-standby"})
    assert standby_seeking.for_writes().params["target_session_attrs"] == "read-write"


def test_each_hosts_error_is_named_in_one_line():
    import psycopg

    from ops.procs import free_port
    from ops.servers import failures

    ports = [free_port(), free_port()]
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(
            host="127.0.0.1,127.0.0.1", port=f"{ports[0]},{ports[1]}", dbname="d", connect_timeout=2
        )
    line = failures(info.value)
    assert line == f"127.0.0.1:{ports[0]}: Connection refused; 127.0.0.1:{ports[1]}: Connection refused"
