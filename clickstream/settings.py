"""Every setting, declared once: name, type, default, help.

Sources, later wins: defaults < TOML file (``--config`` / ``CLICKSTREAM_CONFIG``) <
environment ``CLICKSTREAM_<NAME>`` < command-line flags.  A bad value raises
:class:`SettingsError` whose message is one line naming the key and what it accepts.

Per-site overrides live in the TOML file under ``[site.<site id>]`` and may set any
setting marked ``per_site``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    per_site: bool = False
    secret: bool = False
    comma_list: bool = False  # a comma list; a TOML file may give it as an array of strings


S = Setting
SETTINGS: tuple[Setting, ...] = (
    # where things run
    S("host", str, "127.0.0.1", "Address the HTTP server listens on."),
    S(
        "port",
        int,
        8000,
        "Port of the HTTP server (collector, API and dashboard).",
        min=0,
        max=65535,
    ),
    S(
        "workers",
        int,
        0,
        "Collector processes of `serve` sharing the HTTP port (0: one per CPU core).",
        min=0,
        max=64,
    ),
    S(
        "main_nice",
        int,
        19,
        "Niceness `serve` adds to its main process (sessionizer, chDB, dashboard) once its collector workers run, so that under load the pixels are answered first and the fold catches up (0: same priority; the result is capped at 19).",
        min=0,
        max=19,
    ),
    S("data", str, "./clickstream-data", "Data directory of `serve`: chDB files, spool, token."),
    S(
        "kafka",
        str,
        "",
        "Kafka bootstrap servers; empty: `serve` starts the embedded Tansu broker.",
    ),
    S("broker_port", int, 0, "Port of the embedded broker (0: a free port).", min=0, max=65535),
    S(
        "broker_storage",
        str,
        "memory://tansu/",
        "Storage engine of the embedded Tansu broker: memory://tansu/ or postgres://user:pass@host/db (durable).",
    ),
    S(
        "kafka_idempotence",
        str,
        "auto",
        "Idempotent producer: auto (on for --kafka, off for embedded Tansu), on, off.",
        choices=("auto", "on", "off"),
    ),
    S("topic", str, "clickstream.hits", "Kafka topic of hits."),
    S("topic_partitions", int, 6, "Partitions when the topic is created.", min=1, max=1024),
    S(
        "consumer_group",
        str,
        "clickstream-sessionizer",
        "Kafka consumer group of the sessionizers.",
    ),
    S(
        "clickhouse",
        str,
        "",
        "ClickHouse DSN: http(s)://user:pass@host:8123 or chdb:///abs/path; empty: chDB in <data>/chdb.",
    ),
    S("database", str, "clickstream", "ClickHouse database of the tables."),
    S(
        "chdb_max_memory",
        str,
        "4G",
        "max_memory_usage for queries on the embedded chDB engine; past half of it a GROUP BY or sort spills to disk (slower, but the report answers). Over 100M hits the funnel wants about 3 GB: give it 8G to keep it in memory.",
    ),
    S(
        "api_token",
        str,
        "",
        "Bearer token of the admin API; empty: `serve` generates one into <data>/api_token.",
        secret=True,
    ),
    S(
        "read_token",
        str,
        "",
        "Bearer token of the read-only reports API and dashboard (empty: admin token only). Either form: the token, or sha256:<hex digest>.",
        secret=True,
    ),
    S(
        "reports_auth",
        str,
        "auto",
        "Whether the reports API and dashboard need the read scope: auto (yes once read_token or dashboard_password is set), on, off.",
        choices=("auto", "on", "off"),
    ),
    S(
        "dashboard_password",
        str,
        "",
        "Password of the dashboard login form (read scope; empty: log in with a token). Either form: the password, or sha256:<hex digest>.",
        secret=True,
    ),
    S(
        "session_hours",
        float,
        12.0,
        "Lifetime of a dashboard login (signed cookie), hours.",
        min=0.1,
        max=24 * 30,
    ),
    S(
        "retention_days",
        int,
        0,
        "Keep hits and sessions this many days (ClickHouse TTL, applied by migrate); 0: forever.",
        min=0,
        max=36500,
    ),
    S(
        "retention_tables",
        str,
        "",
        "Per-table retention overriding retention_days, e.g. hits=90,sessions=400 (0: forever).",
        comma_list=True,
    ),
    S("log_level", str, "info", "Log level.", choices=("debug", "info", "warning", "error")),
    # collector
    S(
        "sites",
        str,
        "",
        "Comma-separated allow list of site ids; empty: accept any well-formed site id.",
        comma_list=True,
    ),
    S("cookie_domain", str, "", "Domain attribute of the _cs_vid cookie (empty: host-only)."),
    S(
        "cookie_third_party",
        bool,
        False,
        "Set _cs_vid with SameSite=None; Secure (collector on another site).",
    ),
    S("max_url_length", int, 2000, "Longest accepted page URL / referrer.", min=100, max=16384),
    S("max_props", int, 30, "Most custom x_* props per hit.", min=0, max=1000),
    S(
        "max_body_bytes",
        int,
        65536,
        "Largest POST /collect body (413 above).",
        min=1024,
        max=16 * 1024 * 1024,
    ),
    S("max_batch_events", int, 100, "Most events in one POST /collect array.", min=1, max=10000),
    S(
        "allowed_origins",
        str,
        "*",
        "CORS origins allowed to POST /collect (comma list, * for any).",
        per_site=True,
        comma_list=True,
    ),
    S(
        "respect_dnt",
        bool,
        False,
        "Drop hits from browsers sending DNT: 1 or Sec-GPC: 1.",
        per_site=True,
    ),
    S(
        "ip_truncate",
        bool,
        True,
        "Truncate IPs before storage (IPv4 /24, IPv6 /48).",
        per_site=True,
    ),
    S(
        "redirect_hosts",
        str,
        "",
        "Hosts GET /r may redirect to (comma list); others are refused.",
        per_site=True,
        comma_list=True,
    ),
    S(
        "cookieless",
        bool,
        False,
        "No cookie: the visitor id is a hash of site + IP + user agent with a salt that rotates daily (see docs/privacy.md).",
        per_site=True,
    ),
    S(
        "rate_limit_per_ip",
        float,
        0.0,
        "Hits per second one IP (IPv6: its /64) may send to the collector; 0: no limit. Over it: dropped and counted, the pixel still answers.",
        min=0,
        max=1_000_000,
    ),
    S(
        "rate_limit_burst",
        int,
        60,
        "Hits one IP may send at once before rate_limit_per_ip applies.",
        min=1,
        max=1_000_000,
    ),
    S(
        "trust_proxy",
        bool,
        False,
        "Take the client IP from X-Forwarded-For (behind your own reverse proxy).",
    ),
    S(
        "pixel_fast_path",
        bool,
        True,
        "Answer `GET /p.gif` inside the HTTP protocol (same checks, no ASGI cycle); off: through the ASGI app.",
    ),
    S(
        "produce_linger_ms",
        float,
        2.0,
        "Longest a hit waits for others to share its Kafka batch (group commit; the answer waits for the acknowledgement).",
        min=0,
        max=100,
    ),
    S(
        "produce_timeout_s",
        float,
        2.0,
        "Longest the collector waits on Kafka before spooling a hit.",
        min=0.05,
        max=60,
    ),
    S(
        "spool_fsync",
        str,
        "always",
        "When spooled hits are fsynced: always (before the answer), interval (every second), never (OS decides).",
        choices=("always", "interval", "never"),
    ),
    S(
        "spool_max_bytes",
        int,
        1024**3,
        "Largest spool on disk; above it hits are dropped (pixel still answers the GIF, beacon answers 503).",
        min=4096,
        max=2**50,
    ),
    # sessionizer
    S(
        "session_timeout_min",
        float,
        30.0,
        "Inactivity (event time) that ends a session, minutes.",
        min=1,
        max=24 * 60,
        per_site=True,
    ),
    S(
        "flush_interval_s",
        float,
        1.0,
        "How often open sessions and new hits are written to ClickHouse.",
        min=0.05,
        max=60,
    ),
    S(
        "search_params",
        str,
        "q,query,s,search,searchword,k,keyword,keywords",
        "URL parameters that carry a site-search query.",
        per_site=True,
        comma_list=True,
    ),
    S(
        "quick_back_s",
        float,
        10.0,
        "A back-loop is a quick back when the time on the middle page is under this.",
        min=0,
        max=3600,
        per_site=True,
    ),
    S(
        "session_split_midnight",
        bool,
        False,
        "Also end sessions at local midnight (in `time_zone`).",
        per_site=True,
    ),
    S(
        "time_zone",
        str,
        "UTC",
        "IANA time zone of the site (midnight split, daily reports), e.g. Europe/Paris.",
        per_site=True,
    ),
    S(
        "max_session_hits",
        int,
        10000,
        "Most hits in one session; the next hit starts a new session (counted).",
        min=10,
        max=1_000_000,
        per_site=True,
    ),
    S(
        "max_session_hours",
        float,
        24.0,
        "Longest session, hours; a later hit starts a new session (counted).",
        min=0.5,
        max=24 * 7,
        per_site=True,
    ),
    S(
        "bots",
        str,
        "flag",
        "Bots (UA parser + crawler-user-agents list): flag (is_bot=1), drop (not stored, counted), off.",
        choices=("flag", "drop", "off"),
        per_site=True,
    ),
    S(
        "geoip_db",
        str,
        "",
        "Path of a MaxMind-format .mmdb (GeoLite2/DB-IP City) for country/region/city; empty: none.",
    ),
)
del S

_BY_NAME = {s.name: s for s in SETTINGS}
_SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # the collector's rule
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _check_time_zone(value: str) -> str:
    """'' when ``value`` is an IANA time zone of this machine's tz database, else why not."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)"
    return ""


def _check_memory_size(value: str) -> str:
    """The sizes chDB's max_memory_usage is given as: 4G, 512M, 4GiB, 1073741824."""
    if re.fullmatch(r"\s*\d+\s*[KMGT]?i?B?\s*", value, re.I):
        return ""
    return f"{value!r} is not a memory size (e.g. 4G, 512M, 1073741824)"


def _check_retention_tables(value: str) -> str:
    from clickstream.retention import TTL_COLUMNS

    for part in value.split(","):
        table, sep, days = part.strip().partition("=")
        if part.strip() and (
            not sep
            or table.strip() not in TTL_COLUMNS
            or not days.strip().isdigit()
            or int(days) > 36500
        ):
            return (
                f"{part.strip()!r} is not table=days (0..36500) with a table among "
                f"{', '.join(TTL_COLUMNS)}"
            )
    return ""


def _check_readable_file(value: str) -> str:
    if not value:
        return ""
    try:
        with open(Path(value).expanduser(), "rb"):
            return ""
    except OSError as exc:
        return f"cannot open {value!r}: {exc.strerror}"


def _check_clickhouse_dsn(value: str) -> str:
    """The DSNs ``warehouse.connect`` takes (checked here so that start-up stops first)."""
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.password:  # the message names the value: not its password
        value = value.replace(parts.password, "***")
    if parts.scheme == "chdb":
        if value.startswith("chdb:///"):
            return ""
        return f"{value!r} is not chdb:///abs/path (an absolute path after chdb://)"
    if parts.scheme in ("http", "https", "clickhouse") and parts.hostname:
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            return f"{value!r} has a bad port"
        return ""
    return f"{value!r} is not a ClickHouse DSN (http(s)://user:pass@host:8123 or chdb:///abs/path)"


def _check_identifier(value: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", value):
        return ""
    return f"{value!r} is not a ClickHouse identifier (letters, digits, '_'; not a digit first)"


def _check_bootstrap(value: str) -> str:
    """``host:port`` (comma list); empty: the embedded broker."""
    for part in value.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep:  # a bare host: the client's default port 9092
            host, port = port, "9092"
        host = host.strip("[]")
        if not (host and port.isdigit() and 0 < int(port) < 65536 and " " not in host):
            return f"{part.strip()!r} is not host:port (a comma list of Kafka bootstrap servers)"
    return ""


def _check_topic(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._-]{1,249}", value) and value not in (".", ".."):
        return ""
    return f"{value!r} is not a Kafka topic name (1-249 letters, digits, '.', '_', '-')"


def _check_data_dir(value: str) -> str:
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        return f"{value!r} is a file, not a directory"
    return ""


_CHECKS: dict[str, Callable[[Any], str]] = {
    "data": _check_data_dir,
    "clickhouse": _check_clickhouse_dsn,
    "database": _check_identifier,
    "kafka": _check_bootstrap,
    "topic": _check_topic,
    "geoip_db": _check_readable_file,
    "time_zone": _check_time_zone,
    "chdb_max_memory": _check_memory_size,
    "retention_tables": _check_retention_tables,
}


def _convert(setting: Setting, raw: Any, origin: str) -> Any:
    where = f"setting {setting.name!r} ({origin})"
    if (
        setting.comma_list
        and isinstance(raw, list)
        and all(isinstance(item, str) and "," not in item for item in raw)
    ):
        raw = ",".join(item.strip() for item in raw)
    if setting.type is bool:
        if isinstance(raw, bool):
            value: Any = raw
        elif isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            value = raw.strip().lower() in _TRUE
        else:
            raise SettingsError(f"{where}: {raw!r} is not a boolean (use true/false)")
    elif setting.type in (int, float):
        try:
            if isinstance(raw, bool) or (setting.type is int and isinstance(raw, float)):
                raise ValueError  # TOML `port = 8000.5` or `workers = true`: not an integer
            value = setting.type(raw)
        except (TypeError, ValueError):
            raise SettingsError(
                f"{where}: {raw!r} is not {'an integer' if setting.type is int else 'a number'}"
            ) from None
        if (setting.min is not None and value < setting.min) or (
            setting.max is not None and value > setting.max
        ):
            raise SettingsError(f"{where}: {value} is outside {setting.min:g}..{setting.max:g}")
    else:
        if not isinstance(raw, str):
            kind = "a string or an array of strings" if setting.comma_list else "a string"
            raise SettingsError(f"{where}: {raw!r} is not {kind}")
        value = raw
    if setting.choices:
        if isinstance(value, str) and value.strip().lower() in setting.choices:
            value = value.strip().lower()
        else:
            raise SettingsError(f"{where}: {value!r} is not one of {', '.join(setting.choices)}")
    check = _CHECKS.get(setting.name)
    problem = check(value) if check is not None else ""
    if problem:
        raise SettingsError(f"{where}: {problem}")
    return value


class Settings:
    """Resolved settings; attribute access by name, per-site view with :meth:`for_site`."""

    def __init__(
        self, values: Mapping[str, Any], sites: Mapping[str, Mapping[str, Any]] | None = None
    ):
        self._values = dict(values)
        # plain attributes: the collector reads settings per request, and __getattr__ (the
        # fallback after a failed lookup) costs about 1 µs a read
        self.__dict__.update(self._values)
        self._sites = {k: dict(v) for k, v in (sites or {}).items()}
        self._site_views: dict[str, Settings] = {}
        listed = {s.strip() for s in self._values["sites"].split(",") if s.strip()}
        self._allow = frozenset(listed)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    @property
    def site_overrides(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self._sites.items()}

    def replace(self, **changes: Any) -> Settings:
        values = dict(self._values)
        for name, raw in changes.items():
            if name not in _BY_NAME:
                raise SettingsError(f"unknown setting {name!r}")
            values[name] = _convert(_BY_NAME[name], raw, "override")
        return Settings(values, self._sites)

    def for_site(self, site: str) -> Settings:
        """Settings as seen by one site: its ``[site.<id>]`` overrides applied."""
        override = self._sites.get(site)
        if not override:
            return self
        view = self._site_views.get(site)
        if view is None:
            view = self._site_views[site] = Settings({**self._values, **override}, self._sites)
        return view

    @property
    def site_allow_list(self) -> frozenset[str]:
        return self._allow

    @property
    def configured_sites(self) -> frozenset[str]:
        """Site ids that have a ``[site.<id>]`` table."""
        return frozenset(self._sites)

    @property
    def search_param_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self._values["search_params"].split(",") if p.strip())

    @property
    def data_dir(self) -> Path:
        return Path(self._values["data"]).expanduser().resolve()

    @property
    def clickhouse_dsn(self) -> str:
        return self._values["clickhouse"] or f"chdb://{self.data_dir / 'chdb'}"

    @property
    def embedded_broker(self) -> bool:
        return not self._values["kafka"]

    @property
    def idempotence(self) -> bool:
        mode = self._values["kafka_idempotence"]
        return (not self.embedded_broker) if mode == "auto" else mode == "on"


def load(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve settings from defaults, a TOML file, the environment and flags."""
    env = os.environ if env is None else env
    values = {s.name: s.default for s in SETTINGS}
    sites: dict[str, dict[str, Any]] = {}
    path = config_file or env.get("CLICKSTREAM_CONFIG")
    if path:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise SettingsError(f"config file {str(path)!r}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {str(path)!r}: {exc}") from None
        table = _settings_table(doc, str(path))
        for key, raw in table.items():
            if key == "site":
                sites = _site_overrides(raw)
                continue
            setting = _lookup(key, "config file")
            values[key] = _convert(setting, raw, "config file")
    for setting in SETTINGS:
        var = "CLICKSTREAM_" + setting.name.upper()
        if var in env:
            values[setting.name] = _convert(setting, env[var], f"env {var}")
    for key, raw in (flags or {}).items():
        if raw is None:
            continue
        setting = _lookup(key, "flag")
        values[key] = _convert(setting, raw, "flag --" + key.replace("_", "-"))
    allow = {s.strip() for s in values["sites"].split(",") if s.strip()}
    for site in sites:
        if allow and site not in allow:  # a typo: its overrides would never apply
            raise SettingsError(
                f"[site.{site}] (config file): {site!r} is not in the `sites` allow list "
                f"({', '.join(sorted(allow))})"
            )
    return Settings(values, sites)


def _settings_table(doc: dict[str, Any], path: str) -> dict[str, Any]:
    """The settings of a TOML file: top-level keys, or a ``[clickstream]`` table, or both
    (``[site.<id>]`` tables may sit at the top level or under ``[clickstream]``)."""
    inner = doc.get("clickstream", {})
    if not isinstance(inner, dict):
        raise SettingsError(f"config file {path!r}: 'clickstream' must be a table ([clickstream])")
    table = {k: v for k, v in doc.items() if k != "clickstream"}
    for key, value in inner.items():
        if key == "site" and isinstance(value, dict) and isinstance(table.get("site"), dict):
            both = sorted(set(value) & set(table["site"]))
            if both:
                raise SettingsError(f"config file {path!r}: [site.{both[0]}] is given twice")
            table["site"] = {**table["site"], **value}
        elif key in table:
            raise SettingsError(
                f"config file {path!r}: {key!r} is set both at the top level and in [clickstream]"
            )
        else:
            table[key] = value
    return table


def _lookup(key: str, origin: str) -> Setting:
    try:
        return _BY_NAME[key]
    except KeyError:
        close = difflib.get_close_matches(key, _BY_NAME, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SettingsError(
            f"unknown setting {key!r} in {origin}{hint} (settings: the README's table, or --help)"
        ) from None


def _site_overrides(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise SettingsError("key 'site' (config file): [site.<id>] tables expected")
    out: dict[str, dict[str, Any]] = {}
    for site, table in raw.items():
        if not _SITE_ID.match(site):
            raise SettingsError(
                f"[site.{site}] (config file): a site id is 1-64 letters, digits, '.', '_', '-'"
            )
        if not isinstance(table, dict):
            raise SettingsError(f"key 'site.{site}' (config file): a table expected")
        out[site] = {}
        for key, value in table.items():
            setting = _lookup(key, f"[site.{site}]")
            if not setting.per_site:
                raise SettingsError(f"setting {key!r} cannot be set per site (in [site.{site}])")
            out[site][key] = _convert(setting, value, f"[site.{site}]")
    return out


def cli_flags(names: Callable[[Setting], bool] = lambda s: True) -> list[Setting]:
    """Settings offered as command-line flags."""
    return [s for s in SETTINGS if names(s)]


def help_text(s: Setting) -> str:
    """A setting's documentation, the same in README's table and in ``--help``."""
    extra = f" One of: {', '.join(s.choices)}." if s.choices else ""
    extra += " Per site." if s.per_site else ""
    return s.help + extra


def markdown_table() -> str:
    """The README's settings table, generated from SETTINGS (a test keeps them equal)."""
    rows = ["| setting | env | default | help |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = "" if s.secret else s.default
        rows.append(
            f"| `{s.name}` | `CLICKSTREAM_{s.name.upper()}` | `{default}` | {help_text(s)} |"
        )
    return "\n".join(rows)


README_START = "<!-- settings:start (generated by `python -m clickstream.settings`) -->"
README_END = "<!-- settings:end -->"


def update_readme(path: str | os.PathLike[str]) -> bool:
    """Rewrite the README's settings table in place; True when it changed."""
    p = Path(path)
    text = p.read_text()
    head, _, rest = text.partition(README_START)
    _, _, tail = rest.partition(README_END)
    new = f"{head}{README_START}\n{markdown_table()}\n{README_END}{tail}"
    if new != text:
        p.write_text(new)
    return new != text


if __name__ == "__main__":  # python -m clickstream.settings [README.md]
    import sys

    target = sys.argv[1] if len(sys.argv) > 1 else "README.md"
    print("updated" if update_readme(target) else "up to date", target)
