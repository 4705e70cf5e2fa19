"""The WebSocket protocol pieces (RFC 6455): handshake checks, server frames, client frames read
back however the bytes arrive."""

from __future__ import annotations

import os
import struct

import pytest

from trad.api.websocket import (BINARY, CLOSE, CONTINUATION, PING, TEXT, FrameReader, ProtocolError, accept_key,
                                close_frame, frame, handshake_problem)

HANDSHAKE = {"Upgrade": "websocket", "Connection": "keep-alive, Upgrade", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def client_frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True) -> bytes:
    """A frame as a client sends it (masked with a random key)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    flag = 0x80 if masked else 0
    head += bytes([flag | n]) if n < 126 else bytes([flag | 126]) + struct.pack("!H", n) if n < 65536 \
        else bytes([flag | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_the_accept_key_is_the_one_of_the_rfc_example():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_only_a_version_13_upgrade_with_a_16_byte_key_is_a_handshake():
    assert handshake_problem("GET", HANDSHAKE) is None
    assert handshake_problem("POST", HANDSHAKE)[0] == 405
    assert handshake_problem("GET", {**HANDSHAKE, "Upgrade": "h2c"})[0] == 426
    assert handshake_problem("GET", {k: v for k, v in HANDSHAKE.items() if k != "Connection"})[0] == 426
    assert handshake_problem("GET", {**HANDSHAKE, "Sec-WebSocket-Version": "8"})[0] == 426
    assert handshake_problem("GET", {**HANDSHAKE, "Sec-WebSocket-Key": "c2hvcnQ="})[0] == 400
    assert handshake_problem("GET", {**HANDSHAKE, "Sec-WebSocket-Key": "not base64!"})[0] == 400


@pytest.mark.parametrize("size, header", [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_server_frames_are_final_unmasked_and_sized_by_the_shortest_length(size, header):
    data = frame(TEXT, b"x" * size)
    assert data[0] == 0x81 and not data[1] & 0x80 and len(data) == header + size
    assert close_frame(1000, "bye") == b"\x88\x05\x03\xe8bye"


def test_messages_are_read_back_whatever_the_pieces_the_bytes_arrive_in():
    stream = (client_frame(TEXT, b'{"type": "ping"}') + client_frame(TEXT, b"he", fin=False)
              + client_frame(PING, b"!") + client_frame(CONTINUATION, b"llo") + client_frame(BINARY, os.urandom(70_000)[:300])
              + client_frame(TEXT, "é".encode() * 100))
    for piece in (1, 7, len(stream)):
        reader, got = FrameReader(), []
        for at in range(0, len(stream), piece):
            got += reader.feed(stream[at:at + piece])
        assert [op for op, _ in got] == [TEXT, PING, TEXT, BINARY, TEXT]
        assert got[0][1] == b'{"type": "ping"}' and got[1][1] == b"!" and got[2][1] == b"hello"
        assert got[4][1].decode() == "é" * 100


@pytest.mark.parametrize("data, code", [
    (client_frame(TEXT, b"hi", masked=False), 1002),
    (bytes([0xC1]) + client_frame(TEXT, b"hi")[1:], 1002),  # a reserved bit
    (client_frame(PING, b"x", fin=False), 1002),
    (client_frame(PING, b"x" * 126), 1002),
    (client_frame(CONTINUATION, b"x"), 1002),
    (client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"), 1002),
    (client_frame(0x3, b"x"), 1002),
    (client_frame(TEXT, b"x" * 70_000), 1009),
    (client_frame(TEXT, b"x" * 40_000, fin=False) + client_frame(CONTINUATION, b"x" * 40_000), 1009),
])
def test_a_breach_of_the_protocol_names_its_close_code(data, code):
    with pytest.raises(ProtocolError) as caught:
        FrameReader().feed(data)
    assert caught.value.code == code
    assert close_frame(code, caught.value.reason)[0] == 0x80 | CLOSE
