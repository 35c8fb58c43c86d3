"""Settings layering: defaults < invoke config (invoke.yaml) < environment < flags."""

from pathlib import Path

import pytest

from ops.errors import UsageError
from ops.settings import build_settings

ROOT = Path("/srv/project")


def test_defaults_apply_when_nothing_is_given():
    settings = build_settings(ROOT)
    assert settings.backend == "auto"
    assert settings.api_host == "127.0.0.1" and settings.db_host == "127.0.0.1"
    assert settings.state_dir == ROOT / ".ops"
    assert settings.state_file == ROOT / ".ops" / "state.json"


def test_each_layer_overrides_the_one_before():
    config = {"backend": "embedded", "api_port": 9001, "stack": "fromyaml"}
    env = {"OPS_API_PORT": "9002", "OPS_STACK": "fromenv"}
    flags = {"stack": "fromflag", "api_port": None}
    settings = build_settings(ROOT, config, env, flags)
    assert settings.backend == "embedded"  # config only
    assert settings.api_port == 9002  # env beats config; a None flag does not count
    assert settings.stack == "fromflag"  # flag beats env


def test_settings_are_frozen():
    settings = build_settings(ROOT)
    with pytest.raises(Exception, match="frozen"):
        settings.api_port = 1  # type: ignore[misc]


def test_unrelated_environment_is_ignored():
    settings = build_settings(ROOT, env={"OPS_NOT_A_SETTING": "x", "PATH": "/bin"})
    assert settings.backend == "auto"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"backend": "kubernetes"}, "invalid setting backend 'kubernetes'"),
        ({"api_port": "eighty"}, "invalid setting api_port 'eighty'"),
        ({"api_port": 70000}, "invalid setting api_port 70000"),
        ({"stack": "Bad Name!"}, "invalid setting stack"),
        ({"api_host": "everywhere"}, "invalid setting api_host 'everywhere': must be an IP address"),
        ({"db_host": "example.org"}, "invalid setting db_host 'example.org'"),
    ],
)
def test_bad_values_are_a_usage_error_naming_the_setting(flags, message):
    with pytest.raises(UsageError) as info:
        build_settings(ROOT, flags=flags)
    assert info.value.exit_code == 2
    assert message in info.value.one_line()


def test_listening_everywhere_is_an_opt_in_that_clients_reach_over_loopback():
    settings = build_settings(ROOT, env={"OPS_API_HOST": "0.0.0.0", "OPS_DB_HOST": "0.0.0.0"})
    assert settings.api_host == settings.db_host == "0.0.0.0"
    assert settings.api_url == "http://127.0.0.1:8000" and settings.db_connect_host == "127.0.0.1"


def test_unknown_key_in_config_file_is_rejected():
    with pytest.raises(UsageError, match="unknown setting 'bakend'"):
        build_settings(ROOT, config={"bakend": "docker"})


def test_database_url_from_env_is_normalised_to_sync_psycopg():
    settings = build_settings(ROOT, env={"DATABASE_URL": "postgresql://u:p@db.example:5433/homer"})
    assert settings.database_url == "postgresql+psycopg://u:p@db.example:5433/homer"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+asyncpg://u:p@h/db", "driver 'asyncpg' is not supported"),
        ("mysql://u:p@h/db", "is not PostgreSQL"),
        ("not a url", "not a valid URL"),
        ("postgresql://u:p@h:notaport/db", "malformed port"),
        ("postgresql://u:p@/db", "needs a host"),
    ],
)
def test_malformed_database_url_is_a_usage_error_without_the_password(url, message):
    with pytest.raises(UsageError) as info:
        build_settings(ROOT, env={"DATABASE_URL": url})
    assert message in info.value.one_line()
    assert ":p@" not in info.value.one_line()


def test_relative_state_dir_is_under_the_project():
    assert build_settings(ROOT, flags={"state_dir": "tmp/ci"}).state_dir == ROOT / "tmp" / "ci"


def test_the_default_api_port_may_move_but_one_the_user_set_may_not():
    default = build_settings(ROOT)
    assert default.api_port == 8000 and not default.api_port_fixed
    assert build_settings(ROOT, config={"api_port": 8000}).api_port_fixed  # invoke.yaml, even at 8000
    assert build_settings(ROOT, env={"OPS_API_PORT": "8100"}).api_port_fixed
    assert build_settings(ROOT, flags={"api_port": "8101"}).api_port == 8101


def test_the_offline_fallback_is_a_setting():
    assert build_settings(ROOT).docker_offline_fallback
    assert not build_settings(ROOT, env={"OPS_DOCKER_OFFLINE_FALLBACK": "false"}).docker_offline_fallback
