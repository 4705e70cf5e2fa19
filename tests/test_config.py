"""Settings come from the environment once, with clear errors for bad values."""

import pytest

from trad.config import Settings
from trad.errors import InvalidInput


def test_defaults_serve_local_development():
    s = Settings.from_env({})
    assert (s.database_url, s.redis_url, s.queue, s.progress_interval, s.api_token, s.max_configs,
            s.retention_days, s.port) == ("postgresql://localhost/trad", "redis://localhost:6379/0",
                                          "training", 5.0, None, 10_000, 30, 8000)
    assert s.host == "127.0.0.1"


def test_variables_override_defaults():
    s = Settings.from_env({"TRAD_DATABASE_URL": "postgresql://db/x", "TRAD_REDIS_URL": "redis://r:1/2",
                           "TRAD_QUEUE": "q", "TRAD_PROGRESS_INTERVAL": "0.5", "TRAD_API_TOKEN": "t",
                           "TRAD_MAX_CONFIGS": "50", "TRAD_RETENTION_DAYS": "7", "PORT": "9000"})
    assert (s.database_url, s.redis_url, s.queue, s.progress_interval, s.api_token, s.max_configs,
            s.retention_days, s.port) == ("postgresql://db/x", "redis://r:1/2", "q", 0.5, "t", 50, 7, 9000)


def test_database_url_from_parts():
    s = Settings.from_env({"DB_HOST": "h", "DB_PORT": "6543", "DB_USER": "u", "DB_PASSWORD": "p@ss", "DB_NAME": "n"})
    assert s.database_url == "postgresql://u:p%40ss@h:6543/n"


@pytest.mark.parametrize("name, value", [("TRAD_PROGRESS_INTERVAL", "soon"), ("PORT", "-1"), ("TRAD_MAX_CONFIGS", "0")])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(InvalidInput, match=name):
        Settings.from_env({name: value})
