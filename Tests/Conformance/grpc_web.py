#!/usr/bin/env python3
"""The gRPC interop cases that gRPC-Web can carry, through the gateway, by a
client written from the gRPC-Web spec (grpc/grpc doc/PROTOCOL-WEB.md) on
Python's `h2`: unary, server-streaming, client-streaming and bidi calls (full
duplex ping-pong over HTTP/2), the status and trailers in a
trailer frame at the end of the body, and the `-text` variant's base64 both
ways. Each case runs in both content types, with binary messages (+proto)
and with proto3 JSON ones (+json, written and read by Python's json_format).

With --http1.1 the same cases run over HTTP/1.1 with Python's http.client
(one keep-alive connection for all of them, request bodies chunked for
-text), as a browser on a plain-HTTP page calls; --tls CERT makes that
HTTPS with ALPN http/1.1.

  grpc_web.py HOST:PORT [--origin ORIGIN] [--http1.1 [--tls CERT]]
"""
import base64
import http.client
import socket
import ssl
import os
import struct
import sys
import time

from google.protobuf import json_format
import h2.config
import h2.connection
import h2.events

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

testkit.compile_stubs(
    "web_protos", [("grpc/testing/%s.proto" % n, n) for n in ("test", "messages", "empty")],
    rewrite=lambda text: text.replace('import "grpc/testing/', 'import "web_protos/'))
from web_protos import empty_pb2, messages_pb2  # noqa: E402

TEST = "/grpc.testing.TestService/"


class Reply:
    def __init__(self, status, headers, body, text):
        self.http_status = status
        self.headers = headers
        if text:  # padded chunks one after another: decode four characters at a time
            body = b"".join(base64.b64decode(body[i:i + 4]) for i in range(0, len(body), 4))
        self.messages, self.trailers = [], None
        at = 0
        while at < len(body):
            flag, length = body[at], struct.unpack(">I", body[at + 1:at + 5])[0]
            payload = body[at + 5:at + 5 + length]
            assert len(payload) == length, "a frame cut short"
            at += 5 + length
            if flag & 0x80:
                assert self.trailers is None, "two trailer frames"
                self.trailers = {}
                for line in payload.decode().split("\r\n"):
                    if line:
                        name, _, value = line.partition(":")
                        self.trailers[name.strip().lower()] = value.strip()
            else:
                assert self.trailers is None, "a message after the trailers"
                assert flag == 0, "compressed or unknown flag %d" % flag
                self.messages.append(payload)
        assert self.trailers is not None, "no trailer frame: %r" % headers

    @property
    def status(self):
        return int(self.trailers.get("grpc-status", self.headers.get("grpc-status", "-1")))


class HTTP1:
    """One HTTP/1.1 connection, kept alive across requests (reopened if the gateway closed it)."""
    enabled = False
    conn = None
    cert = None

    @classmethod
    def request(cls, target, method, path, headers, body=None, chunked=False):
        host, port = target.rsplit(":", 1)
        if cls.conn is None:
            if cls.cert:
                ctx = ssl.create_default_context(cafile=cls.cert)
                ctx.set_alpn_protocols(["http/1.1"])
                cls.conn = http.client.HTTPSConnection(host, int(port), timeout=20, context=ctx)
            else:
                cls.conn = http.client.HTTPConnection(host, int(port), timeout=20)
        if chunked:
            cls.conn.request(method, path, body=iter([body[i:i + 7000] for i in range(0, len(body), 7000)]),
                             headers=dict(headers), encode_chunked=True)
        else:
            cls.conn.request(method, path, body=body, headers=dict(headers))
        reply = cls.conn.getresponse()
        data = reply.read()
        assert reply.version == 11, reply.version
        if cls.cert:
            assert cls.conn.sock.selected_alpn_protocol() == "http/1.1", cls.conn.sock.selected_alpn_protocol()
        got = {k.lower(): v for k, v in reply.getheaders()}
        if got.get("connection", "").lower() == "close":
            cls.conn.close()
            cls.conn = None
        return reply.status, got, data


def exchange(target, headers, body=b""):
    """One HTTP/2 request over h2c (or HTTP/1.1 with --http1.1); returns (status, headers, body)."""
    if HTTP1.enabled:
        fields = dict(headers)
        return HTTP1.request(target, fields.pop(":method"), fields.pop(":path"), fields.items(), body or None)
    host, port = target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=20)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":scheme", "http"), (":authority", target)] + headers, end_stream=not body)
    if body:
        conn.send_data(sid, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    got, data = {}, bytearray()
    while True:
        chunk = sock.recv(65536)
        assert chunk, "the gateway closed the connection"
        events = conn.receive_data(chunk)
        sock.sendall(conn.data_to_send())
        for e in events:
            if isinstance(e, h2.events.ResponseReceived):
                got = {k: v for k, v in e.headers}
            elif isinstance(e, h2.events.DataReceived):
                data.extend(e.data)
            elif isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)):
                sock.close()
                return int(got.get(":status", "0")), got, bytes(data)


def content_type(text, json):
    return ("application/grpc-web-text+" if text else "application/grpc-web+") + ("json" if json else "proto")


def call(target, path, requests, text, metadata=(), json=False):
    """One gRPC-Web call over h2c (or HTTP/1.1): `requests` (serialized messages, or proto3 JSON with
    `json`: application/grpc-web+json) framed and sent, the answer read whole."""
    ctype = content_type(text, json)
    body = b"".join(struct.pack(">BI", 0, len(r)) + r for r in requests)
    if text:
        body = base64.b64encode(body)
    if HTTP1.enabled:
        status, headers, received = HTTP1.request(
            target, "POST", path, [("content-type", ctype), ("accept", ctype), ("x-grpc-web", "1")] + list(metadata), body, chunked=text)
        assert status == 200, "HTTP %s %r" % (status, headers)
        assert headers.get("content-type") == ctype, headers
        return Reply(status, headers, received, text)
    stream = H2Call(target, path, ctype, metadata)
    stream.send(body)
    return stream.finish()


class H2Call:
    """One gRPC-Web call over h2c, kept open: request bytes sent as the caller gives them
    (within HTTP/2 flow control), the answer read as it comes, so a call can be full duplex."""

    def __init__(self, target, path, ctype, metadata=()):
        host, port = target.rsplit(":", 1)
        self.ctype, self.text = ctype, "-text+" in ctype
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(self.sid, [(":method", "POST"), (":scheme", "http"), (":authority", target), (":path", path),
                                          ("content-type", ctype), ("accept", ctype), ("x-grpc-web", "1")] + list(metadata))
        self.status, self.headers, self.received, self.ended = None, {}, bytearray(), False
        self.taken = 0  # answer messages handed out by next_message

    def pump(self):
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError("the gateway closed the connection")
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                self.headers = {k: v for k, v in event.headers}
                self.status = int(self.headers[":status"])
            elif isinstance(event, h2.events.DataReceived):
                self.received.extend(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                raise AssertionError("gRPC-Web carries no HTTP trailers: %r" % event.headers)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended = True
            elif isinstance(event, h2.events.StreamReset):
                raise AssertionError("stream reset: %r" % event)
        self.sock.sendall(self.conn.data_to_send())

    def send(self, body):
        """Request bytes, already framed (and base64 for -text), sent within the flow-control window."""
        sent = 0
        while sent < len(body):
            room = min(self.conn.local_flow_control_window(self.sid), self.conn.max_outbound_frame_size, len(body) - sent)
            if room == 0:
                self.pump()
                continue
            self.conn.send_data(self.sid, body[sent:sent + room])
            sent += room
            self.sock.sendall(self.conn.data_to_send())

    def next_message(self):
        """The answer's next message, waiting for it while the request stays open."""
        while True:
            body = bytes(self.received)
            if self.text:  # whole padded groups only: the rest is still on its way
                body = b"".join(base64.b64decode(body[i:i + 4]) for i in range(0, len(body) - len(body) % 4, 4))
            at, seen = 0, 0
            while at + 5 <= len(body):
                flag, length = body[at], struct.unpack(">I", body[at + 1:at + 5])[0]
                if at + 5 + length > len(body):
                    break
                assert not flag & 0x80, "the call ended early: %r" % body[at + 5:at + 5 + length]
                if seen == self.taken:
                    self.taken += 1
                    return body[at + 5:at + 5 + length]
                seen += 1
                at += 5 + length
            assert not self.ended, "the stream ended without another message"
            self.pump()

    def finish(self):
        """Half-closes the request and reads the answer to its end."""
        self.conn.end_stream(self.sid)
        self.sock.sendall(self.conn.data_to_send())
        while not self.ended:
            self.pump()
        self.sock.close()
        assert self.status == 200, "HTTP %s %r" % (self.status, self.headers)
        assert self.headers.get("content-type") == self.ctype, self.headers
        return Reply(self.status, self.headers, bytes(self.received), self.text)


class Checks:
    def __init__(self, target, text, json=False):
        self.target = target
        self.text = text
        self.json = json

    def wire(self, message):
        """A protobuf message as binary or as proto3 JSON (Python's json_format, independent of the gateway's mapping)."""
        return json_format.MessageToJson(message).encode() if self.json else message.SerializeToString()

    def parse(self, raw, response_type):
        return json_format.Parse(raw.decode(), response_type()) if self.json else response_type.FromString(raw)

    def call(self, path, requests, response_type, metadata=()):
        """`requests` (protobuf messages) sent whole, then the answer's messages parsed back into `response_type`."""
        r = call(self.target, path, [self.wire(m) for m in requests], self.text, metadata, json=self.json)
        r.messages = [self.parse(m, response_type) for m in r.messages]
        return r

    def empty_unary(self):
        r = self.call(TEST + "EmptyCall", [empty_pb2.Empty()], empty_pb2.Empty)
        if r.status == 8:  # the end-to-end config limits EmptyCall to 3 per second: wait as the hint says, once
            time.sleep(int(r.trailers["retry-after-ms"]) / 1000.0)
            r = self.call(TEST + "EmptyCall", [empty_pb2.Empty()], empty_pb2.Empty)
        assert r.status == 0 and len(r.messages) == 1 and r.messages[0] == empty_pb2.Empty(), (r.trailers, r.messages)

    def large_unary(self):
        req = messages_pb2.SimpleRequest(response_size=314159, payload=messages_pb2.Payload(body=b"\x00" * 271828))
        r = self.call(TEST + "UnaryCall", [req], messages_pb2.SimpleResponse)
        assert r.status == 0, r.trailers
        resp = r.messages[0]
        assert len(resp.payload.body) == 314159, len(resp.payload.body)

    def server_streaming(self):
        sizes = [31415, 9, 2653, 58979]
        req = messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=s) for s in sizes])
        r = self.call(TEST + "StreamingOutputCall", [req], messages_pb2.StreamingOutputCallResponse)
        assert r.status == 0, r.trailers
        got = [len(m.payload.body) for m in r.messages]
        assert got == sizes, got

    def client_streaming(self):
        reqs = [messages_pb2.StreamingInputCallRequest(payload=messages_pb2.Payload(body=b"\x00" * n))
                for n in (27182, 8, 1828, 45904)]
        r = self.call(TEST + "StreamingInputCall", reqs, messages_pb2.StreamingInputCallResponse)
        assert r.status == 0, r.trailers
        assert [m.aggregated_payload_size for m in r.messages] == [74922], r.messages

    def duplex_requests(self):
        return [messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=size)],
                                                        payload=messages_pb2.Payload(body=b"\x00" * n))
                for size, n in zip(DUPLEX_SIZES, (27182, 8, 1828, 45904))]

    def bidi_requests_first(self):
        """FullDuplexCall with every request sent before any answer is read: what a client
        without a duplex transport (a browser's fetch, HTTP/1.1) can do with a bidi method."""
        r = self.call(TEST + "FullDuplexCall", self.duplex_requests(), messages_pb2.StreamingOutputCallResponse)
        assert r.status == 0, r.trailers
        assert [len(m.payload.body) for m in r.messages] == DUPLEX_SIZES, [len(m.payload.body) for m in r.messages]

    def ping_pong(self):
        """FullDuplexCall over HTTP/2, one request at a time, each answer read before the next request is
        sent (the interop case): the gateway relays each message as it comes, both ways. With -text each
        request frame is base64'd on its own, so padding falls mid-body."""
        stream = H2Call(self.target, TEST + "FullDuplexCall", content_type(self.text, self.json))
        for size, request in zip(DUPLEX_SIZES, self.duplex_requests()):
            wire = self.wire(request)
            frame = struct.pack(">BI", 0, len(wire)) + wire
            stream.send(base64.b64encode(frame) if self.text else frame)
            answer = self.parse(stream.next_message(), messages_pb2.StreamingOutputCallResponse)
            assert len(answer.payload.body) == size, (size, len(answer.payload.body))
        r = stream.finish()
        assert r.status == 0 and len(r.messages) == len(DUPLEX_SIZES), (r.trailers, len(r.messages))

    def status_code_and_message(self):
        req = messages_pb2.SimpleRequest(response_status=messages_pb2.EchoStatus(code=2, message="test status message"))
        r = self.call(TEST + "UnaryCall", [req], messages_pb2.SimpleResponse)
        assert r.status == 2 and r.trailers.get("grpc-message") == "test status message", r.trailers
        assert r.messages == [], "an error carries no message"

    def custom_metadata(self):
        req = messages_pb2.SimpleRequest(response_size=314159, payload=messages_pb2.Payload(body=b"\x00" * 271828))
        trailing = base64.b64encode(b"\xab\xab\xab").decode()
        r = self.call(TEST + "UnaryCall", [req], messages_pb2.SimpleResponse, metadata=[
            ("x-grpc-test-echo-initial", "test_initial_metadata_value"), ("x-grpc-test-echo-trailing-bin", trailing)])
        assert r.status == 0, r.trailers
        assert r.headers.get("x-grpc-test-echo-initial") == "test_initial_metadata_value", r.headers
        echoed = r.trailers.get("x-grpc-test-echo-trailing-bin", "")
        assert base64.b64decode(echoed + "=" * (-len(echoed) % 4)) == b"\xab\xab\xab", r.trailers

    def unimplemented(self):
        r = self.call("/grpc.testing.UnimplementedService/UnimplementedCall", [empty_pb2.Empty()], empty_pb2.Empty)
        assert r.status == 12, r.trailers
        r = self.call("/grpc.testing.NoSuchService/Call", [empty_pb2.Empty()], empty_pb2.Empty)
        assert r.status == 12, r.trailers


def cors(target, origin):
    """A browser page of `origin` (allowed by the gateway's config) may call; another may not."""
    status, headers, _ = exchange(target, [(":method", "OPTIONS"), (":path", TEST + "UnaryCall"), ("origin", origin),
                                           ("access-control-request-method", "POST"),
                                           ("access-control-request-headers", "content-type,x-grpc-web,authorization")])
    assert status == 204 and headers.get("access-control-allow-origin") == origin, (status, headers)
    assert "x-grpc-web" in headers.get("access-control-allow-headers", ""), headers
    status, headers, _ = exchange(target, [(":method", "OPTIONS"), (":path", TEST + "UnaryCall"), ("origin", "https://evil.example"),
                                           ("access-control-request-method", "POST")])
    assert status == 403 and "access-control-allow-origin" not in headers, (status, headers)
    r = call(target, TEST + "UnaryCall", [b""], False, metadata=[("origin", origin)])
    assert r.headers.get("access-control-allow-origin") == origin and "grpc-status" in r.headers.get("access-control-expose-headers", ""), r.headers
    r = call(target, TEST + "UnaryCall", [b""], False, metadata=[("origin", "https://evil.example")])
    assert "access-control-allow-origin" not in r.headers, r.headers


DUPLEX_SIZES = [31415, 9, 2653, 58979]
CASES = ["empty_unary", "large_unary", "server_streaming", "client_streaming", "bidi_requests_first", "status_code_and_message",
         "custom_metadata", "unimplemented"]
# Full duplex needs a transport that sends and reads at once: HTTP/2 here (http.client, like a browser's
# fetch over HTTP/1.1, sends the whole body before it reads).
DUPLEX_CASES = ["ping_pong"]


def main():
    target = sys.argv[1]
    origin = sys.argv[sys.argv.index("--origin") + 1] if "--origin" in sys.argv else None
    HTTP1.enabled = "--http1.1" in sys.argv
    HTTP1.cert = sys.argv[sys.argv.index("--tls") + 1] if "--tls" in sys.argv else None
    failed = 0
    variants = [(text, json) for json in (False, True) for text in (False, True)]
    cases = CASES if HTTP1.enabled else CASES + DUPLEX_CASES
    for text, json in variants:
        checks = Checks(target, text, json)
        for name in cases:
            label = "%s (%s%s)" % (name, "grpc-web-text" if text else "grpc-web", "+json" if json else "")
            try:
                getattr(checks, name)()
                print("PASS", label)
            except Exception as e:  # noqa: BLE001
                failed += 1
                print("FAIL", label, "-", repr(e))
    total = len(variants) * len(cases)
    if origin:
        total += 1
        try:
            cors(target, origin)
            print("PASS cors")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL cors -", repr(e))
    print("%d passed, %d failed (grpc-web%s)" % (total - failed, failed, " over HTTP/1.1" + (" TLS" if HTTP1.cert else "") if HTTP1.enabled else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
