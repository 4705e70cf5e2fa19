"""The WebSocket protocol (RFC 6455), server side, as much of it as the job feed needs.

The handshake is answered by the app (a 101 response gunicorn writes like any other); then the
feed reads and writes frames on the raw client socket that gunicorn's gevent worker hands over
(`environ["gunicorn.socket"]`). Server frames are unmasked and never fragmented; client frames
must be masked and are reassembled here (text or binary messages, fragmented or not, up to
MAX_MESSAGE bytes; control frames of at most 125 bytes, anywhere in between). No extension is
negotiated: permessage-deflate would cost every client a compressor of its own.

Why not a library: flask-sock 0.7 (simple-websocket 1.1, wsproto 1.3) works under gunicorn's
gevent worker, but frames every message once per client (29 ms of CPU for one 1.3 kB row to
1,000 clients; 169 ms once browsers negotiate permessage-deflate, which it always accepts),
holds 38 kB per connection (105 kB with deflate), and writes through its own reader thread's
socket, so the listener cannot hand a change to an idle client in one system call as it does
for SSE. gevent-websocket needs gevent's own WSGI server in place of gunicorn's parser (and has
had no release since 2017). Here a change is framed once per process and written with one
`writev` per client.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Mapping

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VERSION = "13"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MESSAGES, CONTROLS = (TEXT, BINARY), (CLOSE, PING, PONG)
MAX_MESSAGE = 64 * 1024  # a client sends pings and resumes: a few dozen bytes
NORMAL, PROTOCOL_ERROR, UNSUPPORTED, POLICY, TOO_BIG, UNAVAILABLE = 1000, 1002, 1003, 1008, 1009, 1011


class ProtocolError(Exception):
    """The client broke the protocol; the connection is closed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def handshake_problem(method: str, headers: Mapping[str, str]) -> tuple[int, str] | None:
    """(status, message) when the request is not a WebSocket opening handshake trad accepts;
    None when it is (RFC 6455 §4.2.1)."""
    if method != "GET":
        return 405, "a WebSocket is opened with GET"
    if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("Connection", "").lower():
        return 426, "this route speaks WebSocket: send Upgrade: websocket and Connection: Upgrade"
    if headers.get("Sec-WebSocket-Version") != VERSION:
        return 426, f"only WebSocket version {VERSION} is spoken (Sec-WebSocket-Version: {VERSION})"
    try:
        key = base64.b64decode(headers.get("Sec-WebSocket-Key", ""), validate=True)
    except ValueError:
        key = b""
    if len(key) != 16:
        return 400, "Sec-WebSocket-Key must be 16 bytes in base64"
    return None


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.strip().encode() + GUID).digest()).decode()


def frame_header(opcode: int, length: int) -> bytes:
    """The header of a final, unmasked frame carrying `length` bytes."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


def frame(opcode: int, payload: bytes = b"") -> bytes:
    """A whole server frame."""
    return frame_header(opcode, len(payload)) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with its status code and a reason of at most 123 bytes."""
    return frame(CLOSE, struct.pack("!H", code) + reason.encode()[:123])


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR the payload with the 4-byte mask, repeated (a whole message at once, not byte by byte)."""
    if not payload:
        return payload
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[:len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")


class FrameReader:
    """Client frames in, whole messages and control frames out, as (opcode, payload)."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buffer = b""
        self._parts: list[bytes] = []
        self._opcode: int | None = None  # of the message being reassembled

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Every complete message or control frame the bytes so far hold; ProtocolError on a breach."""
        self._buffer += data
        out = []
        while (parsed := self._next_frame()) is not None:
            fin, opcode, payload = parsed
            message = self._take(fin, opcode, payload)
            if message is not None:
                out.append(message)
        return out

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        data = self._buffer
        if len(data) < 2:
            return None
        first, second = data[0], data[1]
        if first & 0x70:
            raise ProtocolError(PROTOCOL_ERROR, "reserved bits set: no extension was negotiated")
        if not second & 0x80:
            raise ProtocolError(PROTOCOL_ERROR, "client frames must be masked")
        length, at = second & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            length, at = struct.unpack_from("!H", data, 2)[0], 4
        elif length == 127:
            if len(data) < 10:
                return None
            length, at = struct.unpack_from("!Q", data, 2)[0], 10
        if length > self.max_message:
            raise ProtocolError(TOO_BIG, f"a message may hold at most {self.max_message} bytes")
        if len(data) < at + 4 + length:
            return None
        payload = unmask(data[at + 4:at + 4 + length], data[at:at + 4])
        self._buffer = data[at + 4 + length:]
        return bool(first & 0x80), first & 0x0F, payload

    def _take(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        if opcode in CONTROLS:
            if not fin or len(payload) > 125:
                raise ProtocolError(PROTOCOL_ERROR, "control frames are whole and at most 125 bytes")
            return opcode, payload
        if opcode in MESSAGES:
            if self._opcode is not None:
                raise ProtocolError(PROTOCOL_ERROR, "a new message began before the last one ended")
            self._opcode, self._parts = opcode, []
        elif opcode != CONTINUATION or self._opcode is None:
            raise ProtocolError(PROTOCOL_ERROR, f"unexpected opcode {opcode:#x}")
        self._parts.append(payload)
        if sum(map(len, self._parts)) > self.max_message:
            raise ProtocolError(TOO_BIG, f"a message may hold at most {self.max_message} bytes")
        if not fin:
            return None
        message, self._opcode = (self._opcode, b"".join(self._parts)), None
        self._parts = []
        return message
