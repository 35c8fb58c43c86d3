"""DATABASE_URL in both libpq forms: every parameter kept, bad ones refused with exit 2, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from ops.backends.base import Endpoint
from ops.dsn import check_files, normalise, params_of
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
