from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clickstream.settings import SETTINGS, SettingsError, load, markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('port = 9000\nhost = "0.0.0.0"\nsites = "shop,blog"\n[site.shop]\nsession_timeout_min = 10\n')
    s = load(env={"CLICKSTREAM_PORT": "9100", "CLICKSTREAM_CONFIG": str(cfg)}, flags={"host": "127.0.0.2"})
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
        ({"env": {"CLICKSTREAM_PORT": "eighty"}}, "setting 'port' (env CLICKSTREAM_PORT): 'eighty' is not an integer"),
        ({"flags": {"port": "70000"}}, "setting 'port' (flag --port): 70000 is outside 0..65535"),
        ({"flags": {"log_level": "loud"}}, "'loud' is not one of debug, info, warning, error"),
        ({"env": {"CLICKSTREAM_COOKIE_THIRD_PARTY": "maybe"}}, "is not a boolean"),
        ({"flags": {"nope": "1"}}, "unknown setting 'nope'"),
        ({"flags": {"produce_linger_ms": "-1"}}, "setting 'produce_linger_ms' (flag --produce-linger-ms): -1.0 is outside 0..100"),
        ({"env": {"CLICKSTREAM_MAIN_NICE": "20"}}, "setting 'main_nice' (env CLICKSTREAM_MAIN_NICE): 20 is outside 0..19"),
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
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "clickstream: error: setting 'port' (flag --port): 'not-a-port' is not an integer"
    )


def test_readme_settings_table_is_generated_from_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "README settings table is stale: paste settings.markdown_table()"


def test_every_setting_is_a_serve_flag() -> None:
    from clickstream.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    for s in SETTINGS:
        assert "--" + s.name.replace("_", "-") in help_text
