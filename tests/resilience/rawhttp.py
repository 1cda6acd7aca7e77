"""Raw-socket HTTP for abuse tests: send exact bytes, read the status line back."""

from __future__ import annotations

import contextlib
import socket


def exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[int | None, bytes]:
    """(status, head+body read) of one raw request; status None when closed without answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(data)  # the server may answer and close before reading it all
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep:
                length = [
                    int(v)
                    for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n")[1:])
                    if k.strip().lower() == b"content-length"
                ]
                if length and len(body) >= length[0]:
                    break
    if not out.startswith(b"HTTP/1.1 "):
        return None, out
    return int(out[9:12]), out
