"""A throwaway PostgreSQL cluster in a temporary directory (initdb + pg_ctl, as user postgres)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from clickstream.broker import free_port


def pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]), None
    )
    if not found:
        # not a skip: CI installs postgresql (make system-deps); its absence is a failure
        pytest.fail(f"PostgreSQL is not installed ({name} not found): run `make system-deps`")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and there is no 'postgres' user to run the cluster as")
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster; yields its URL with database ``tansu``; stops and removes it after."""
    root = tempfile.mkdtemp(prefix="cs-pg-")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), free_port()
    run = lambda *cmd: subprocess.run(  # noqa: E731
        _as_postgres(list(cmd)), check=True, capture_output=True, timeout=120
    )
    try:
        run(pg_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        run(
            pg_bin("pg_ctl"),
            "-D",
            data,
            "-w",
            "-l",
            os.path.join(root, "log"),
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        try:
            run(pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "tansu")
            yield f"postgres://postgres:postgres@127.0.0.1:{port}/tansu"
        finally:
            run(pg_bin("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
