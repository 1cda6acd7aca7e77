from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clickstream.settings import SETTINGS, SettingsError, load, markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'port = 9000\nhost = "0.0.0.0"\nsites = "shop,blog"\n[site.shop]\nsession_timeout_min = 10\n'
    )
    s = load(
        env={"CLICKSTREAM_PORT": "9100", "CLICKSTREAM_CONFIG": str(cfg)},
        flags={"host": "127.0.0.2"},
    )
    assert s.port == 9100 and s.host == "127.0.0.2" and s.database == "clickstream"
    assert s.for_site("shop").session_timeout_min == 10.0
    assert s.for_site("blog").session_timeout_min == 30.0
    assert s.site_allow_list == frozenset({"shop", "blog"})
    overrides_only = tmp_path / "o.toml"
    overrides_only.write_text("[site.shop]\nrespect_dnt = true\n")
    s = load(env={}, config_file=overrides_only)
    assert s.site_allow_list == frozenset()  # overrides do not restrict which sites are accepted
    assert s.for_site("shop").respect_dnt is True and s.respect_dnt is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"env": {"CLICKSTREAM_PORT": "eighty"}},
            "setting 'port' (env CLICKSTREAM_PORT): 'eighty' is not an integer",
        ),
        ({"flags": {"port": "70000"}}, "setting 'port' (flag --port): 70000 is outside 0..65535"),
        ({"flags": {"log_level": "loud"}}, "'loud' is not one of debug, info, warning, error"),
        ({"env": {"CLICKSTREAM_COOKIE_THIRD_PARTY": "maybe"}}, "is not a boolean"),
        ({"flags": {"nope": "1"}}, "unknown setting 'nope'"),
        (
            {"flags": {"produce_linger_ms": "-1"}},
            "setting 'produce_linger_ms' (flag --produce-linger-ms): -1.0 is outside 0..100",
        ),
        (
            {"env": {"CLICKSTREAM_MAIN_NICE": "20"}},
            "setting 'main_nice' (env CLICKSTREAM_MAIN_NICE): 20 is outside 0..19",
        ),
        ({"env": {"CLICKSTREAM_PIXEL_FAST_PATH": "fast"}}, "'fast' is not a boolean"),
    ],
)
def test_bad_values_name_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load(**{"env": {}, **kwargs})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_config_file_and_per_site_misuse(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    with pytest.raises(SettingsError, match="config file"):
        load(env={}, config_file=bad)
    misuse = tmp_path / "m.toml"
    misuse.write_text("[site.shop]\nport = 1\n")
    with pytest.raises(SettingsError, match="'port' cannot be set per site"):
        load(env={}, config_file=misuse)


def test_invalid_setting_stops_start_up_with_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "serve", "--port", "not-a-port"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "clickstream: error: setting 'port' (flag --port): 'not-a-port' is not an integer"
    )


def test_readme_settings_table_is_generated_from_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, (
        "README settings table is stale: paste settings.markdown_table()"
    )


def test_every_setting_is_a_serve_flag() -> None:
    from clickstream.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    for s in SETTINGS:
        assert "--" + s.name.replace("_", "-") in help_text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"flags": {"time_zone": "Mars/Base"}},
            "setting 'time_zone' (flag --time-zone): 'Mars/Base' is not an IANA time zone",
        ),
        (
            {"env": {"CLICKSTREAM_TIME_ZONE": "../../etc/passwd"}},
            "setting 'time_zone' (env CLICKSTREAM_TIME_ZONE): '../../etc/passwd' is not an IANA time zone",
        ),
        (
            {"flags": {"session_timeout": "20"}},
            "unknown setting 'session_timeout' in flag; did you mean 'session_timeout_min'?",
        ),
    ],
)
def test_time_zone_is_checked_at_start_and_unknown_keys_get_the_nearest_name(
    kwargs: dict, message: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load(**{"env": {}, **kwargs})
    assert message in str(info.value) and "\n" not in str(info.value)
    assert load(env={}, flags={"time_zone": "Europe/Paris"}).time_zone == "Europe/Paris"


def test_a_bad_per_site_time_zone_stops_start_up_not_the_first_hit(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[site.shop]\ntime_zone = "Europe/Pariss"\n')
    with pytest.raises(
        SettingsError,
        match=r"setting 'time_zone' \(\[site.shop\]\): 'Europe/Pariss' is not an IANA",
    ):
        load(env={}, config_file=cfg)


def test_config_file_with_a_clickstream_table_keeps_top_level_site_tables_and_arrays(
    tmp_path: Path,
) -> None:
    """[clickstream] and top-level [site.x] tables together: nothing is silently ignored;
    comma-list settings may be TOML arrays; a choice is read case-insensitively."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[clickstream]\nport = 9000\nlog_level = "INFO"\nsearch_params = ["q", "find"]\n'
        '[site.shop]\nallowed_origins = ["https://shop.example", "https://www.shop.example"]\n'
        "[clickstream.site.blog]\nsession_timeout_min = 5\n"
    )
    s = load(env={}, config_file=cfg)
    assert s.port == 9000 and s.log_level == "info"
    assert s.search_param_set == frozenset({"q", "find"})
    assert s.for_site("shop").allowed_origins == "https://shop.example,https://www.shop.example"
    assert s.for_site("blog").session_timeout_min == 5.0
    twice = tmp_path / "t.toml"
    twice.write_text("port = 1\n[clickstream]\nport = 2\n")
    with pytest.raises(
        SettingsError, match="'port' is set both at the top level and in \\[clickstream\\]"
    ):
        load(env={}, config_file=twice)
    frac = tmp_path / "f.toml"
    frac.write_text("port = 8000.5\n")
    with pytest.raises(
        SettingsError, match=r"setting 'port' \(config file\): 8000.5 is not an integer"
    ):
        load(env={}, config_file=frac)
    bad = tmp_path / "b.toml"
    bad.write_text("redirect_hosts = [1, 2]\n")
    with pytest.raises(SettingsError, match="is not a string or an array of strings"):
        load(env={}, config_file=bad)


@pytest.mark.parametrize(
    "command", ["serve", "collector", "sessionizer", "dashboard", "import-log", "sql"]
)
def test_help_of_every_command_carries_each_settings_documentation(command: str) -> None:
    """--help shows what README's table shows: the help line, the accepted values, Per site."""
    import re

    from clickstream.cli import build_parser
    from clickstream.settings import help_text

    parser = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    flat = re.sub(r"\s+", "", parser.format_help())  # argparse wraps lines (also at hyphens)
    for s in SETTINGS:
        assert re.sub(r"\s+", "", help_text(s)) in flat, (command, s.name)
    assert "Loglevel.Oneof:debug,info,warning,error." in flat
    assert "Inactivity(eventtime)thatendsasession,minutes.Persite." in flat


def test_a_boolean_flag_alone_means_true_and_still_takes_a_value() -> None:
    from clickstream.cli import build_parser, resolve

    parser = build_parser()
    on = resolve(parser.parse_args(["serve", "--respect-dnt", "--port", "9000"]))
    assert on.respect_dnt is True and on.port == 9000
    off = resolve(parser.parse_args(["serve", "--ip-truncate", "off"]))
    assert off.ip_truncate is False and off.respect_dnt is False


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"chdb_max_memory": "lots"},
            "setting 'chdb_max_memory' (flag --chdb-max-memory): 'lots' is not a memory size",
        ),
        (
            {"retention_tables": "hits=abc"},
            "setting 'retention_tables' (flag --retention-tables): 'hits=abc' is not table=days",
        ),
        (
            {"retention_tables": "pages=30"},
            "with a table among hits, sessions, identities, identity_audit",
        ),
        (
            {"geoip_db": "/nope/City.mmdb"},
            "setting 'geoip_db' (flag --geoip-db): cannot open '/nope/City.mmdb': No such file",
        ),
        (
            {"clickhouse": "foo://x"},
            "setting 'clickhouse' (flag --clickhouse): 'foo://x' is not a ClickHouse DSN",
        ),
        ({"clickhouse": "chdb://rel/path"}, "is not chdb:///abs/path"),
        ({"clickhouse": "http://u:secret@h:x"}, "'http://u:***@h:x' has a bad port"),
        (
            {"database": "bad-name"},
            "setting 'database' (flag --database): 'bad-name' is not a ClickHouse identifier",
        ),
        (
            {"kafka": "h1:9092,h2:port"},
            "setting 'kafka' (flag --kafka): 'h2:port' is not host:port",
        ),
        ({"kafka": "::::"}, "'::::' is not host:port"),
        ({"topic": "hits/v1"}, "setting 'topic' (flag --topic): 'hits/v1' is not a Kafka topic"),
        (
            {"data": __file__},
            f"setting 'data' (flag --data): {__file__!r} is a file, not a directory",
        ),
    ],
)
def test_values_used_only_after_start_up_are_checked_when_settings_load(
    flags: dict, message: str
) -> None:
    """serve printed its banner, then a traceback, for a bad chdb_max_memory or a missing
    geoip_db (and for a bad clickhouse DSN or database name; a bad kafka bootstrap started
    collectors that spooled every hit); migrate took any retention_tables."""
    with pytest.raises(SettingsError) as info:
        load(env={}, flags=flags)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert load(
        env={}, flags={"chdb_max_memory": "512MiB", "retention_tables": "hits=90, sessions=0"}
    )
    ok = {
        "clickhouse": "https://user:pw@ch.example:8443",
        "kafka": "k1:9092, k2, [::1]:9093",
        "database": "analytics_2",
        "topic": "clickstream.hits-v1",
    }
    assert load(env={}, flags=ok).kafka == "k1:9092, k2, [::1]:9093"
    assert load(env={}, flags={"clickhouse": "chdb:///var/lib/cs/chdb"})


def test_readme_states_the_precedence_the_loader_applies(tmp_path: Path) -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (
        "flags win over `CLICKSTREAM_*` variables, which win over the TOML file, which wins "
        "over the defaults"
    ) in readme
    cfg = tmp_path / "c.toml"
    cfg.write_text("port = 1\nworkers = 1\nmain_nice = 1\n")
    s = load(
        env={"CLICKSTREAM_PORT": "2", "CLICKSTREAM_WORKERS": "2"},
        flags={"port": "3"},
        config_file=cfg,
    )
    assert (s.port, s.workers, s.main_nice, s.rate_limit_burst) == (3, 2, 1, 60)


def test_site_tables_must_name_a_site_the_collector_accepts(tmp_path: Path) -> None:
    """[site.shp] beside sites = "shop" was accepted and never applied (a typo)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('sites = "shop,blog"\n[site.shp]\nsession_timeout_min = 5\n')
    with pytest.raises(
        SettingsError,
        match=r"\[site.shp\] \(config file\): 'shp' is not in the `sites` allow list \(blog, shop\)",
    ):
        load(env={}, config_file=cfg)
    assert (
        load(env={"CLICKSTREAM_SITES": "shp"}, config_file=cfg).for_site("shp").session_timeout_min
        == 5.0
    )
    bad = tmp_path / "b.toml"
    bad.write_text('[site."my shop"]\nrespect_dnt = true\n')
    with pytest.raises(SettingsError, match="a site id is 1-64 letters"):
        load(env={}, config_file=bad)
