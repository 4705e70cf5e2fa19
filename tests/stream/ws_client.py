"""A small blocking WebSocket client for the tests (RFC 6455: masked frames out, server frames in)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from urllib.parse import urlsplit

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class Refused(Exception):
    """The server answered the handshake with another status than 101."""

    def __init__(self, status: int, head: str, body: str) -> None:
        super().__init__(f"{status}: {body[:300]}")
        self.status, self.head, self.body = status, head, body


class WebSocket:
    """One connection: `messages()` yields the server's JSON messages; pings are answered unless
    `answer_pings` is False; `close_code` is set once the server closed."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, answer_pings: bool = True,
                 timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.answer_pings, self.close_code, self.close_reason, self.pings = answer_pings, None, "", 0
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1", f"Host: {parts.netloc}",
                 "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            self._buffer += data
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        self.head = head.decode("latin-1")
        status = int(self.head.split()[1])
        if status != 101:
            self._buffer += self._rest()
            self.sock.close()
            raise Refused(status, self.head, self._buffer.decode(errors="replace"))

    def _rest(self) -> bytes:
        """The rest of a refusal's body (by its Content-Length)."""
        length = next((int(line.split(":", 1)[1]) for line in self.head.split("\r\n")
                       if line.lower().startswith("content-length:")), 0)
        data = b""
        self.sock.settimeout(5)
        while len(self._buffer) + len(data) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, message: dict) -> None:
        self.send_frame(TEXT, json.dumps(message).encode())

    def _frame(self, deadline: float) -> tuple[int, bytes] | None:
        while True:
            if len(self._buffer) >= 2:
                n, at = self._buffer[1] & 0x7F, 2
                if n == 126:
                    n, at = (struct.unpack_from("!H", self._buffer, 2)[0], 4) if len(self._buffer) >= 4 else (None, 0)
                elif n == 127:
                    n, at = (struct.unpack_from("!Q", self._buffer, 2)[0], 10) if len(self._buffer) >= 10 else (None, 0)
                if n is not None and len(self._buffer) >= at + n:
                    opcode, payload = self._buffer[0] & 0x0F, self._buffer[at:at + n]
                    self._buffer = self._buffer[at + n:]
                    return opcode, payload
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                raise ConnectionError("closed without a close frame")
            self._buffer += data

    def receive(self, timeout: float = 10.0) -> dict | None:
        """The next JSON message; None on timeout or once the server has closed."""
        deadline = time.monotonic() + timeout
        while self.close_code is None:
            got = self._frame(deadline)
            if got is None:
                return None
            opcode, payload = got
            if opcode == TEXT:
                return json.loads(payload)
            if opcode == PING:
                self.pings += 1
                if self.answer_pings:
                    self.send_frame(PONG, payload)
            elif opcode == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_reason = payload[2:].decode()
                self.send_frame(CLOSE, payload[:2])
        return None

    def messages(self, timeout: float = 10.0):
        """Messages until the server closes or none comes for `timeout` seconds."""
        while (message := self.receive(timeout)) is not None:
            yield message

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
