#!/usr/bin/env python3
"""An independent Wire client, written from docs/wire.md alone.

  wire_client.py PORT SECRET    runs every case against a server on 127.0.0.1:PORT
                                serving grpc.testing.TestService; exits 1 on any failure

Standard library sockets and hmac; protobuf (descriptor pool, no generated
code) for message payloads.
"""
import hashlib
import hmac
import os
import socket
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PREFACE = b"CRWIRE\x01\x00"
SETTINGS, AUTH_CHALLENGE, AUTH_RESPONSE, AUTH_OK = 0x01, 0x02, 0x03, 0x04
CALL_START, MESSAGE, END_STREAM, RESPONSE_HEADERS, TRAILERS, CANCEL, WINDOW_UPDATE = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16
PING, PONG, GOAWAY = 0x20, 0x21, 0x22


def load_types():
    out = "/tmp/wire_client_%d.pb" % os.getpid()
    if protoc.main(["protoc", "-I" + os.path.join(ROOT, "protos"), "--include_imports", "--descriptor_set_out=" + out,
                    "grpc/testing/test.proto", "croupier/wire/v1/wire.proto"]) != 0:
        sys.exit("protoc failed")
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read()).file:
        pool.Add(f)
    os.remove(out)
    return lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


T = load_types()


def frame(ftype, stream=0, payload=b""):
    return struct.pack(">IBBI", len(payload), ftype, 0, stream) + payload


class Connection:
    def __init__(self, port, secret):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.secret = secret

    def send(self, data):
        self.sock.sendall(data)

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_frame(self):
        length, ftype, flags, stream = struct.unpack(">IBBI", self.read_exact(10))
        return ftype, stream, self.read_exact(length)

    def handshake(self):
        settings = T("croupier.wire.v1.Settings")(max_frame_size=4 << 20, max_concurrent_streams=100, initial_window=1 << 20)
        self.send(PREFACE + frame(SETTINGS, 0, settings.SerializeToString()))
        assert self.read_exact(8) == PREFACE, "server preface"
        server_nonce = None
        while server_nonce is None:
            ftype, _, payload = self.read_frame()
            if ftype == AUTH_CHALLENGE:
                server_nonce = T("croupier.wire.v1.AuthChallenge").FromString(payload).server_nonce
        client_nonce = os.urandom(32)
        mac = hmac.new(self.secret, b"croupier-wire/1 client" + server_nonce + client_nonce, hashlib.sha256).digest()
        self.send(frame(AUTH_RESPONSE, 0, T("croupier.wire.v1.AuthResponse")(
            client_nonce=client_nonce, mac=mac, peer_name="python").SerializeToString()))
        ftype, _, payload = self.read_frame()
        assert ftype == AUTH_OK, "expected AUTH_OK, got 0x%x" % ftype
        expected = hmac.new(self.secret, b"croupier-wire/1 server" + client_nonce + server_nonce, hashlib.sha256).digest()
        assert hmac.compare_digest(T("croupier.wire.v1.AuthOk").FromString(payload).mac, expected), "server proof"
        return self

    def call(self, stream, method, requests, timeout_micros=0):
        """Sends a whole call; returns (responses, trailers)."""
        start = T("croupier.wire.v1.CallStart")(method=method, timeout_micros=timeout_micros)
        data = frame(CALL_START, stream, start.SerializeToString())
        for r in requests:
            data += frame(MESSAGE, stream, r.SerializeToString())
        self.send(data + frame(END_STREAM, stream))
        responses = []
        while True:
            ftype, s, payload = self.read_frame()
            if s != stream:
                continue
            if ftype == MESSAGE:
                responses.append(payload)
            elif ftype == TRAILERS:
                return responses, T("croupier.wire.v1.Trailers").FromString(payload)


def case_unary(c):
    _, t = c.call(1, "/grpc.testing.TestService/EmptyCall", [T("grpc.testing.Empty")()])
    assert t.code == 0, t
    req = T("grpc.testing.SimpleRequest")(response_size=314)
    r, t = c.call(3, "/grpc.testing.TestService/UnaryCall", [req])
    assert t.code == 0 and len(r) == 1, t
    assert len(T("grpc.testing.SimpleResponse").FromString(r[0]).payload.body) == 314


def case_server_streaming(c):
    req = T("grpc.testing.StreamingOutputCallRequest")()
    for size in (5, 50, 500):
        req.response_parameters.add(size=size)
    r, t = c.call(5, "/grpc.testing.TestService/StreamingOutputCall", [req])
    sizes = [len(T("grpc.testing.StreamingOutputCallResponse").FromString(m).payload.body) for m in r]
    assert t.code == 0 and sizes == [5, 50, 500], (t, sizes)


def case_client_streaming(c):
    reqs = [T("grpc.testing.StreamingInputCallRequest")(payload={"body": b"x" * n}) for n in (10, 20, 30)]
    r, t = c.call(7, "/grpc.testing.TestService/StreamingInputCall", reqs)
    assert t.code == 0 and T("grpc.testing.StreamingInputCallResponse").FromString(r[0]).aggregated_payload_size == 60, t


def case_status(c):
    req = T("grpc.testing.SimpleRequest")(response_status={"code": 5, "message": "no such table"})
    _, t = c.call(9, "/grpc.testing.TestService/UnaryCall", [req])
    assert t.code == 5 and t.message == "no such table", t


def case_unimplemented(c):
    _, t = c.call(11, "/grpc.testing.UnimplementedService/UnimplementedCall", [T("grpc.testing.Empty")()])
    assert t.code == 12, t


def case_deadline(c):
    req = T("grpc.testing.StreamingOutputCallRequest")()
    req.response_parameters.add(size=1, interval_us=5_000_000)
    _, t = c.call(13, "/grpc.testing.TestService/StreamingOutputCall", [req], timeout_micros=100_000)
    assert t.code == 4, t


def case_ping(c):
    c.send(frame(PING, 0, b"12345678"))
    while True:
        ftype, _, payload = c.read_frame()
        if ftype == PONG:
            assert payload == b"12345678"
            return


def case_malformed_frame(port, secret):
    c = Connection(port, secret).handshake()
    c.send(struct.pack(">IBBI", 0, 0x7F, 0, 0))
    while True:
        ftype, _, payload = c.read_frame()
        if ftype == GOAWAY:
            g = T("croupier.wire.v1.GoAway").FromString(payload)
            assert g.reason == 1 and "unknown frame type" in g.detail, g  # PROTOCOL_ERROR
            return


def case_wrong_secret(port):
    try:
        Connection(port, b"not the secret").handshake()
    except AssertionError:
        return  # GOAWAY instead of AUTH_OK
    raise AssertionError("authenticated with the wrong secret")


def main():
    port, secret = int(sys.argv[1]), sys.argv[2].encode()
    c = Connection(port, secret).handshake()
    failures = 0
    cases = [case_unary, case_server_streaming, case_client_streaming, case_status, case_unimplemented, case_deadline, case_ping]
    for case in cases:
        try:
            case(c)
            print("ok  ", case.__name__)
        except Exception as e:  # noqa: BLE001 - report every case
            failures += 1
            print("FAIL", case.__name__, repr(e))
    for name, run in (("case_malformed_frame", lambda: case_malformed_frame(port, secret)),
                      ("case_wrong_secret", lambda: case_wrong_secret(port))):
        try:
            run()
            print("ok  ", name)
        except Exception as e:  # noqa: BLE001
            failures += 1
            print("FAIL", name, repr(e))
    print("%d passed, %d failed" % (len(cases) + 2 - failures, failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
