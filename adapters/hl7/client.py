"""A small blocking MLLP client: one persistent connection, one ACK per message."""

from __future__ import annotations

import socket

START, END = b"\x0b", b"\x1c\r"


class MllpClient:
    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""

    def send(self, message: str) -> str:
        self.sock.sendall(START + message.encode("utf-8") + END)
        return self.read_reply()

    def read_reply(self) -> str:
        while END not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the gateway closed the connection")
            self._buffer += chunk
        frame, self._buffer = self._buffer.split(END, 1)
        return frame.lstrip(START).decode("utf-8", "replace")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
