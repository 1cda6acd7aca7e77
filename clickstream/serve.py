"""The processes: ``serve`` (everything in one), or collector / sessionizer / dashboard roles.

One Starlette app; the pixel and beacon are raw ASGI callables dispatched before
Starlette's router.  The lifespan starts what the role needs and, on shutdown
(SIGTERM), drains: producer flushed, every produced hit consumed, every session
closed and written, offsets committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from clickstream import (
    api,
    auth,
    broker,
    httplimits,
    openapi,
    privacy_api,
    retention,
    running,
    warehouse,
)
from clickstream.headers import SecurityHeaders
from clickstream.settings import Settings
from collector import app as collector_app
from collector import fastpath
from collector.hot import Collector, Receive, Scope, Send
from collector.sink import HitSink

log = logging.getLogger("clickstream")


@dataclass
class Roles:
    collector: bool = True
    sessionizer: bool = True
    dashboard: bool = True


def api_token(settings: Settings) -> tuple[str, bool]:
    """The admin token: the setting, else one kept in <data>/api_token (generated once)."""
    if settings.api_token:
        return settings.api_token, False
    path = settings.data_dir / "api_token"
    if path.exists():
        return path.read_text().strip(), False
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def _extra_routes() -> list[BaseRoute]:
    """Routes of the read side (reports, dashboard) when that package provides them."""
    try:
        from reports import web
    except ImportError:
        return []
    return list(getattr(web, "routes", []))


WORKER_PATHS = frozenset({"/p.gif", "/collect", "/t.js", "/optout", "/r"})


def worker_count(settings: Settings) -> int:
    """Collector processes of serve (0: one per CPU core).  The main process's fold can
    lag behind a burst (Kafka holds it); the answers to the pixels cannot."""
    return settings.workers or max(1, os.cpu_count() or 1)


class ClickstreamApp:
    """ASGI entry: hot paths first, everything else through Starlette."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        roles: Roles,
        token: str,
        forward: Any = None,
        spool_name: str = "",
    ):
        self.settings = settings
        self.roles = roles
        self.forward = forward  # a collector worker: what is not the collector's goes to main
        self.workers: Any = None  # the main process's collector workers, if any
        spool_dir = (
            settings.data_dir / "spool" / spool_name if spool_name else settings.data_dir / "spool"
        )
        self.sink = HitSink(
            bootstrap,
            settings.topic,
            settings.idempotence,
            spool_dir,
            settings.produce_timeout_s,
            settings.spool_fsync,
            settings.spool_max_bytes,
            settings.topic_partitions,
            settings.produce_linger_ms,
        )
        self.collector = Collector(settings, self.sink.put)
        # read by collector.fastpath's protocol (GET /p.gif without an ASGI cycle)
        self.fast_pixel = (self.collector, self.sink.submit) if roles.collector else None
        self.bootstrap = bootstrap
        route_list: list[BaseRoute] = [
            *api.routes(),
            *auth.routes(),
            *privacy_api.routes(),
            Route("/openapi.json", openapi.endpoint),
        ]
        if roles.collector:
            route_list += collector_app.routes(self.collector)
        if roles.dashboard:
            route_list += _extra_routes()
        self.app = Starlette(
            routes=route_list, lifespan=self.lifespan, middleware=[Middleware(SecurityHeaders)]
        )
        self.app.state.settings = settings
        self.app.state.credentials = auth.Credentials.from_settings(settings, token)  # digests only
        self.app.state.sessionizer = None
        self.app.state.workers = None
        self.app.state.bootstrap = bootstrap  # /healthz asks this Kafka for its metadata

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.roles.collector:
            path = scope["path"]
            if path == "/p.gif":
                await self.collector.pixel(scope, receive, send)
                return
            if path == "/collect":
                await self.collector.beacon(scope, receive, send)
                return
            if self.forward is not None and path not in WORKER_PATHS:
                await self.forward(scope, receive, send)
                return
        await self.app(scope, receive, send)  # type: ignore[arg-type]

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        s = self.settings
        client = None
        if self.forward is None:  # a collector worker leaves ClickHouse to the main process
            client = await asyncio.to_thread(warehouse.connect, s.clickhouse_dsn, s.chdb_max_memory)
            app.state.warehouse = client
        if self.roles.sessionizer:
            assert client is not None  # only collector workers run without one
            await asyncio.to_thread(warehouse.migrate, client, s.database)
            await asyncio.to_thread(retention.apply, client, s.database, s)
        if self.roles.sessionizer:
            await broker.ensure_topic(self.bootstrap, s.topic, s.topic_partitions)
        else:  # a collector answers (and spools) while Kafka is away; replay creates the topic
            try:
                await broker.ensure_topic(self.bootstrap, s.topic, s.topic_partitions, timeout=5)
            except broker.BrokerError as exc:
                logging.getLogger("clickstream").warning(
                    "starting without Kafka (%s): spooling hits", exc
                )
        task = None
        sweeper = None
        if self.roles.collector:
            await self.sink.start()
            sweeper = asyncio.create_task(self._sweep_salts())
            app.state.sink = self.sink
        if self.roles.sessionizer:
            from sessionizer.loop import Sessionizer

            assert client is not None
            sz = Sessionizer(s, client)
            app.state.sessionizer = sz
            task = asyncio.create_task(sz.run(self.bootstrap))
        if self.roles.collector and not self.roles.sessionizer:
            # a collector process's start-up objects (modules, the app) live as long as it
            # does: out of the collector's sight, a full collection no longer walks them
            # all while pixels wait (docs/sizing.md: the p99 at full load)
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
            if self.workers is not None:  # their hits reach Kafka before the drain below
                await asyncio.to_thread(self.workers.stop)
            if self.roles.collector:
                await self.sink.stop()
            if task is not None:
                sz = app.state.sessionizer
                with contextlib.suppress(Exception):
                    if not await broker.unreachable(self.bootstrap):  # Kafka gone: nothing to drain
                        await asyncio.wait_for(sz.drain(), 60)
                sz.stop.set()
                await task

    async def _sweep_salts(self) -> None:
        """Cookieless mode: yesterday's salt leaves the disk within a minute of midnight."""
        while True:
            await asyncio.sleep(60)
            self.collector.salts.sweep()  # a few stat calls: on the loop, no race with salt()


def run(settings: Settings, roles: Roles, announce: bool = True) -> int:
    import uvicorn

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    embedded = None
    bootstrap = settings.kafka
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from clickstream.settings import SettingsError

        raise SettingsError(
            f"setting 'data': cannot create {str(settings.data_dir)!r}: {exc.strerror}"
        ) from None
    if roles.collector and roles.sessionizer:
        from collector.worker import check_port_free

        # before the broker starts: the workers' SO_REUSEPORT bind would share a taken port
        check_port_free(settings.host, settings.port)
    if not bootstrap:
        embedded = broker.EmbeddedBroker(
            settings.broker_port,
            storage=settings.broker_storage,
            log_path=settings.data_dir / "broker.log",
        ).start()
        bootstrap = embedded.bootstrap
    retention.wanted(settings)  # a bad retention_tables stops here, with one line
    try:
        _reach(settings, bootstrap, roles)
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    token, generated = api_token(settings)
    app = ClickstreamApp(settings, bootstrap, roles, token)
    server = uvicorn.Server(uvicorn_config(app, settings))
    sockets = None
    if roles.collector and roles.sessionizer:
        # serve: collector processes own the public port; this one (sessionizer, chDB,
        # dashboard, API) answers on loopback what they forward, so pixel latency never
        # waits on ClickHouse or on the fold.
        from collector.worker import Workers, loopback_socket, reuseport_socket

        probe = reuseport_socket(settings.host, settings.port)
        internal = loopback_socket()
        app.workers = app.app.state.workers = Workers()
        app.workers.start(
            worker_count(settings),
            settings,
            bootstrap,
            f"http://127.0.0.1:{internal.getsockname()[1]}",
            settings.host,
            probe.getsockname()[1],
        )
        probe.close()
        sockets = [internal]
        if settings.main_nice:
            # the workers answer browsers; this process's fold may lag behind a burst
            # (Kafka holds it) and catches up when the pixels leave it the cores
            os.setpriority(
                os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + settings.main_nice
            )
    if announce:
        _announce(settings, token, generated, bootstrap, embedded is not None, roles)
    # uvicorn re-raises the signal it caught once shutdown is done; after a graceful
    # shutdown that is not an error, so the re-raised SIGTERM/SIGINT is absorbed here.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    if roles.collector and roles.sessionizer:
        running.write(settings.data_dir, f"http://{settings.host}:{settings.port}", bootstrap)
    try:
        server.run(sockets=sockets)
    finally:
        running.remove(settings.data_dir)
        if app.workers is not None:
            app.workers.stop()
        if embedded is not None:
            embedded.stop()
    return 0


def _reach(settings: Settings, bootstrap: str, roles: Roles) -> None:
    """Reach ClickHouse and (for the sessionizer) Kafka before uvicorn starts, as the
    lifespan is about to: failing there printed uvicorn's traceback and exited 3; raised
    here, it is the CLI's one line and exit status 1 (WarehouseError, BrokerError), as for
    every other command. The client is the process-wide one the lifespan then reuses.
    The client libraries' own logs of each attempt are kept for ``--log-level debug``."""
    quiet = [] if settings.log_level == "debug" else ["aiokafka", "clickhouse_connect", "urllib3"]
    levels = {name: logging.getLogger(name).level for name in quiet}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        warehouse.connect(settings.clickhouse_dsn, settings.chdb_max_memory)
        if roles.sessionizer:
            asyncio.run(broker.ensure_topic(bootstrap, settings.topic, settings.topic_partitions))
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def uvicorn_config(app: Any, settings: Settings) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
        proxy_headers=settings.trust_proxy,
        server_header=False,
        date_header=False,
        limit_concurrency=4096,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
        # header size/count, request-target and slow-client limits; GET /p.gif without ASGI
        http=fastpath.protocol() if settings.pixel_fast_path else httplimits.protocol(),
    )


def _announce(
    settings: Settings,
    token: str,
    generated: bool,
    bootstrap: str,
    embedded: bool,
    roles: Roles | None = None,
) -> None:
    from collector.snippet import snippet

    roles = roles or Roles()
    base = f"http://{settings.host}:{settings.port}"
    if roles.collector and roles.sessionizer and roles.dashboard:
        print(f"Clickstream is running: dashboard {base}/", flush=True)
    else:  # `clickstream collector|sessionizer|dashboard`: say which part, not a dashboard
        part = next(
            name
            for name, on in (
                ("collector", roles.collector),
                ("sessionizer", roles.sessionizer),
                ("dashboard", roles.dashboard),
            )
            if on
        )
        print(f"Clickstream {part} is running on {base}/", flush=True)
    kind = "in-memory" if settings.broker_storage.startswith("memory:") else "durable"
    print(f"  Kafka: {bootstrap}{f' (embedded Tansu, {kind})' if embedded else ''}", flush=True)
    if roles.sessionizer or roles.dashboard:
        print(f"  ClickHouse: {settings.clickhouse_dsn}", flush=True)
    if settings.api_token:  # the operator's secret (maybe only its sha256): not echoed into logs
        print("  API token: the api_token setting (CLICKSTREAM_API_TOKEN), not shown", flush=True)
    else:
        where = f" (saved in {Path(settings.data_dir) / 'api_token'})"
        print(f"  API token{' (new)' if generated else ''}: {token}{where}", flush=True)
    if not roles.collector:  # the snippet points browsers here: only where pixels land
        return
    from collector.snippet import SnippetError

    try:
        doc = snippet("SITE", base, respect_dnt=bool(settings.respect_dnt))
    except SnippetError:  # e.g. a host the browser cannot reach as such
        doc = {"js": "", "pixel": f'<img src="{base}/p.gif?s=SITE" width="1" height="1" alt="">'}
    print(
        "Paste this snippet into every page's <head> (replace SITE with your site id;\n"
        f"  `clickstream snippet --site ID --data {settings.data_dir}` prints it for a site):",
        flush=True,
    )
    for line in doc["js"].splitlines():
        print(f"  {line}", flush=True)
    print("or the bare pixel (no JS):", flush=True)
    print(f"  {doc['pixel']}", flush=True)


def build_for_tests(
    settings: Settings, bootstrap: str, roles: Roles | None = None, token: str = "test-token"
) -> Any:
    return ClickstreamApp(settings, bootstrap, roles or Roles(), token)
