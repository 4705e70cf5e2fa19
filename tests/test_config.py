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


def demo_servers() -> "DemoServers":
    from trad.config import DemoServers

    return DemoServers(database_url="postgresql://demo/trad", redis_url="redis://127.0.0.1:7/0",
                       queue="demo-queue", redis_prefix="demo:", web_url="http://127.0.0.1:8123")


def test_a_running_demos_servers_are_used_unless_a_server_variable_is_set(tmp_path):
    import fcntl

    from trad.config import DEMO_LOCK, DemoServers, remove_demo_file

    demo_servers().write(tmp_path)
    assert DemoServers.running(tmp_path) is None  # nobody holds the demo's lock: a demo that died
    with open(tmp_path / DEMO_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the running demo does
        demo = DemoServers.running(tmp_path)
        assert demo == demo_servers()
        s = Settings.from_env({}, demo=demo)
        assert (s.database_url, s.redis_url, s.queue, s.redis_prefix, s.web_url) == (
            "postgresql://demo/trad", "redis://127.0.0.1:7/0", "demo-queue", "demo:", "http://127.0.0.1:8123")
        assert s.database_url_set and s.redis_url_set
        mine = Settings.from_env({"DB_NAME": "mine"}, demo=demo)
        assert (mine.database_url, mine.redis_url, mine.queue) == ("postgresql://localhost/mine",
                                                                   "redis://localhost:6379/0", "training")
        queue = Settings.from_env({"TRAD_QUEUE": "q", "TRAD_URL": "http://elsewhere"}, demo=demo)
        assert (queue.database_url, queue.queue, queue.web_url) == ("postgresql://demo/trad", "q", "http://elsewhere")
        forced = Settings.from_env({"TRAD_DATABASE_URL": "postgresql://db/x", "TRAD_QUEUE": "q"}, demo=demo,
                                   demo_wins=True)
        assert (forced.database_url, forced.queue) == ("postgresql://demo/trad", "demo-queue")
        assert oct((tmp_path / "demo.json").stat().st_mode & 0o777) == "0o600"
        remove_demo_file(tmp_path)
        assert DemoServers.running(tmp_path) is None


def test_use_demo_without_a_running_demo_names_the_folder(tmp_path):
    from trad.config import use_demo

    with pytest.raises(InvalidInput, match=f"--demo: no trad demo is running in {tmp_path}"):
        use_demo(tmp_path)


def test_every_field_but_the_two_flags_is_a_row_of_the_settings_table():
    from dataclasses import fields

    from trad.config import SETTINGS

    names = [f.name for f in fields(Settings)]
    assert [s.name for s in SETTINGS] == [n for n in names if n not in ("database_url_set", "redis_url_set")]
    assert len({s.variable for s in SETTINGS}) == len(SETTINGS)
    assert Settings.from_env({}) == Settings()  # unset variables: the table's defaults


def readme_settings_table() -> str:
    """The README's configuration table as the settings table in code writes it."""
    from trad.config import SETTINGS

    kinds = {int: "integer", float: "number", str: "text"}
    rows = ["| variable | type | default | unit | meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = s.shown_default if s.default is None and s.shown is None else f"`{s.shown_default}`"
        rows.append(f"| `{s.variable}` | {kinds[s.kind]} | {default} | {s.unit} | {s.help} |")
    return "\n".join(rows) + "\n"


def test_the_readme_configuration_table_is_the_settings_table():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Configuration"):]
    table = section[section.index("| variable"):]
    table = table[:table.index("\n\n") + 1]
    assert table == readme_settings_table(), "replace README.md's table with:\n" + readme_settings_table()


@pytest.mark.parametrize("variable", ["TRAD_JOB_TIMEOUT", "TRAD_BACKTEST_WAIT", "PORT", "TRAD_QUEUE", "TRAD_URL"])
def test_each_variable_sets_its_field(variable):
    from trad.config import SETTINGS

    setting = next(s for s in SETTINGS if s.variable == variable)
    value = {int: "7", float: "2.5", str: "http://x"}[setting.kind]
    assert getattr(Settings.from_env({variable: value}), setting.name) == setting.kind(value)
