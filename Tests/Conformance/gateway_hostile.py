#!/usr/bin/env python3
"""The gateway under attack: raw HTTP/2 frames (Python `h2` for HPACK and
hand-built frames for floods), raw HTTP/1.1 bytes (http1_attacks.py) and
stock grpcio, one attack at a time. While
each attack runs, a probe on its own connection keeps calling EmptyCall and
must keep being answered, and the gateway's RSS must stay under its
configured cap (plus the process's own baseline).

  gateway_hostile.py HOST:PORT --gateway-pid PID --jwt-secret SECRET --cap-mib N [--only NAME,...]

The gateway must run as Tests/LauncherTests/GatewayHostileTests starts it:
idle timeout 3 s, header timeout 5 s, PINGs allowed every 1 s (so a
client pinging every 2 s is closed only by the idle rule), maxBufferedBytes = N MiB, at most
256 streams per connection, 512 file descriptors, CacheableUnaryCall
needing interop:cache.
"""
import argparse
import os
import random
import select
import socket
import struct
import sys
import threading
import time

import grpc
import h2.config
import h2.connection
import hpack

sys.path.insert(0, os.path.dirname(__file__))
import grpc_interop  # noqa: E402
import http1_attacks  # noqa: E402
import testkit  # noqa: E402

empty_pb2, messages_pb2, test_pb2_grpc = grpc_interop.load_stubs()

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 2, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
ENHANCE_YOUR_CALM = 0xB


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def grpc_message(payload=b""):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class Raw:
    """One HTTP/2 connection driven frame by frame."""

    def __init__(self, target, window=None):
        host, port = target.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.buffer = b""
        self.goaway = None
        self.closed = False
        settings = b""
        if window is not None:
            settings += struct.pack(">HI", 4, window)  # SETTINGS_INITIAL_WINDOW_SIZE
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings))

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def headers(self, stream, path, end_stream=False, extra=()):
        block = self.encoder.encode([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "gw"),
                                     ("content-type", "application/grpc"), ("te", "trailers")] + list(extra))
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        return frame(HEADERS, flags, stream, block)

    def call(self, stream, path, message=b"", end_stream=True):
        return self.send(self.headers(stream, path) + frame(DATA, END_STREAM if end_stream else 0, stream, grpc_message(message)))

    def frames(self, timeout=0.0):
        """Frames received within `timeout` (0: only what is there); notes GOAWAY and EOF."""
        out = []
        end = time.time() + timeout
        while True:
            wait = max(0.0, end - time.time())
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                break
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self.buffer += chunk
            while len(self.buffer) >= 9:
                length = struct.unpack(">I", b"\x00" + self.buffer[:3])[0]
                if len(self.buffer) < 9 + length:
                    break
                kind, flags = self.buffer[3], self.buffer[4]
                stream = struct.unpack(">I", self.buffer[5:9])[0] & 0x7FFFFFFF
                payload = self.buffer[9:9 + length]
                self.buffer = self.buffer[9 + length:]
                if kind == GOAWAY:
                    self.goaway = (struct.unpack(">I", payload[4:8])[0], payload[8:].decode(errors="replace"))
                if kind == PING and not flags & ACK:
                    pass
                out.append((kind, flags, stream, payload))
            if timeout == 0.0:
                continue
        return out

    def wait_closed(self, timeout):
        """True if the gateway closes this connection within `timeout` seconds."""
        end = time.time() + timeout
        while not self.closed and time.time() < end:
            self.frames(min(0.5, max(0.0, end - time.time())))
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Probe:
    """EmptyCall in a loop on its own connection; counts answers and failures."""

    def __init__(self, target):
        self.target = target
        self.ok = 0
        self.worst = 0.0  # the slowest answer, in seconds
        self.failures = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        channel = grpc.insecure_channel(self.target)
        stub = test_pb2_grpc.TestServiceStub(channel)
        while not self.stop.is_set():
            try:
                start = time.time()
                stub.EmptyCall(empty_pb2.Empty(), timeout=5)
                self.worst = max(self.worst, time.time() - start)
                self.ok += 1
            except grpc.RpcError as e:
                self.failures.append("%s: %s" % (e.code(), e.details()))
            time.sleep(0.02)
        channel.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


rss_mib = http1_attacks.rss_mib


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Attacks(http1_attacks.HTTP1Attacks):
    def __init__(self, target, pid, secret, cap_mib):
        self.target = target
        self.pid = pid
        self.secret = secret
        self.cap_mib = cap_mib
        self.baseline = rss_mib(pid)
        self.peak = self.baseline
        self.channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 8 << 20)])
        self.stub = test_pb2_grpc.TestServiceStub(self.channel)

    # --- the frame of every attack: probe served, process alive, memory bounded ---
    def under_attack(self, attack):
        with Probe(self.target) as probe:
            stop = threading.Event()

            def watch():
                while not stop.is_set():
                    self.alive()
                    self.peak = max(self.peak, rss_mib(self.pid))
                    time.sleep(0.05)
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                result = attack()
                time.sleep(0.3)  # the probe gets a turn after the attack too
            finally:
                stop.set()
                watcher.join()
        self.alive()
        self.probe_worst = probe.worst
        assert not probe.failures, "the probe failed during the attack: %s" % probe.failures[:3]
        assert probe.ok >= 3, "the probe was answered only %d times during the attack" % probe.ok
        limit = self.baseline + self.cap_mib + 48
        assert self.peak < limit, "gateway RSS peaked at %.0f MiB (baseline %.0f, cap %d)" % (self.peak, self.baseline, self.cap_mib)
        return result

    def alive(self):
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            raise AssertionError("the gateway process died")
        with open("/proc/%d/stat" % self.pid) as f:
            assert f.read().rsplit(")", 1)[1].split()[0] != "Z", "the gateway process died"

    # 1. a client that goes away mid-call never crashes the gateway
    def disconnect_mid_call(self):
        def attack():
            for i in range(400):
                c = Raw(self.target)
                c.call(1, "/grpc.testing.TestService/EmptyCall")
                c.call(3, "/grpc.health.v1.Health/Watch")
                req = messages_pb2.StreamingOutputCallRequest(
                    response_parameters=[messages_pb2.ResponseParameters(size=10, interval_us=20000)] * 5)
                c.call(5, "/grpc.testing.TestService/StreamingOutputCall", req.SerializeToString())
                c.call(7, "/grpc.testing.TestService/FullDuplexCall", end_stream=False)
                if i % 4 == 1:
                    c.frames(0.002)  # let some calls start answering first
                if i % 10 == 3:
                    c.send(b"\x00\x00\x01\xee\x00\x00\x00\x00\x00x")  # unknown type is fine; then garbage:
                    c.send(b"not an HTTP/2 frame at all, a protocol error" * 4)
                c.close()
        self.under_attack(attack)

    # 2. Rapid Reset: HEADERS + RST_STREAM without end; closed fast, others served meanwhile
    def rapid_reset(self):
        def attack():
            c = Raw(self.target)
            block = c.headers(1, "/grpc.testing.TestService/EmptyCall")
            payload = block[9:]
            stream, sent, start = 1, 0, time.time()
            while not c.closed and time.time() - start < 10:
                batch = b""
                for _ in range(100):
                    batch += frame(HEADERS, END_HEADERS, stream, payload) + frame(RST_STREAM, 0, stream, struct.pack(">I", 8))
                    stream += 2
                sent += 100
                if not c.send(batch):
                    break
                c.frames(0.002)  # paced: what is counted reached the gateway, not a socket buffer
            c.wait_closed(5)
            c.close()
            assert c.closed, "the gateway never closed a Rapid Reset attacker (%d streams in 10 s)" % sent
            assert sent <= 20000, "a Rapid Reset attacker opened %d streams before it was closed" % sent
            return sent
        sent = self.under_attack(attack)
        print("  rapid reset: closed after %d streams" % sent)

    def flood(self, name, make):
        def attack():
            c = Raw(self.target)
            opening = make(c, None)
            if opening:
                c.send(opening)
            unit = make(c, 1)
            batch = unit * 1000
            sent, start = 0, time.time()
            while not c.closed and time.time() - start < 10:
                if not c.send(batch):
                    break
                sent += 1000
                c.frames(0.005)  # paced: what is counted reached the gateway, not a socket buffer
            c.wait_closed(5)
            c.close()
            assert c.closed, "the gateway accepted %d %s frames without closing" % (sent, name)
            assert sent <= 20000, "the gateway accepted %d %s frames before closing" % (sent, name)
            return sent, c.goaway
        sent, goaway = self.under_attack(attack)
        print("  %s flood: closed after %d frames, GOAWAY %s" % (name, sent, goaway))

    # 3. WINDOW_UPDATE and empty DATA floods end in ENHANCE_YOUR_CALM
    def window_update_flood(self):
        self.flood("WINDOW_UPDATE", lambda c, unit: frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)) if unit else None)

    def empty_data_flood(self):
        def make(c, unit):
            if not unit:
                return c.headers(1, "/grpc.testing.TestService/StreamingInputCall")
            return frame(DATA, 0, 1, b"")
        self.flood("empty DATA", make)

    def settings_flood(self):
        self.flood("SETTINGS", lambda c, unit: frame(SETTINGS, 0, 0, b"") if unit else None)

    # 4. PINGs every 0.5 s with nothing else (1 s allowed): told too_many_pings
    def ping_policy(self):
        def attack():
            c = Raw(self.target)
            c.call(1, "/grpc.testing.TestService/EmptyCall")
            c.frames(0.3)
            pings = 0
            start = time.time()
            while not c.closed and time.time() - start < 10:
                c.send(frame(PING, 0, 0, struct.pack(">Q", pings)))
                pings += 1
                c.frames(0.5)
            c.close()
            assert c.closed, "a client pinging every 0.5 s was never closed"
            assert c.goaway is None or c.goaway[0] in (ENHANCE_YOUR_CALM, 0), c.goaway
            return pings, c.goaway
        pings, goaway = self.under_attack(attack)
        print("  ping policy: closed after %d pings, GOAWAY %s" % (pings, goaway))

    # 5. an open idle stream, and PINGs every 2 s, do not keep a connection past the idle timeout (3 s)
    def idle_stream_and_keepalive(self):
        def attack():
            silent = Raw(self.target)
            silent.send(silent.headers(1, "/grpc.testing.TestService/StreamingInputCall"))
            pinger = Raw(self.target)
            pinger.call(1, "/grpc.testing.TestService/EmptyCall")
            start = time.time()
            n = 0
            while time.time() - start < 12 and not (silent.closed and pinger.closed):
                silent.frames(0)
                pinger.send(frame(PING, 0, 0, struct.pack(">Q", n)))
                n += 1
                pinger.frames(1.0)
                silent.frames(1.0)
            assert pinger.goaway is None or pinger.goaway[0] == 0, "the pinger was closed for its pings, not as idle: %s" % (pinger.goaway,)
            assert silent.closed, "a connection holding an idle stream outlived the 3 s idle timeout by 9 s"
            assert pinger.closed, "a connection sending only PINGs outlived the 3 s idle timeout by 9 s"
            silent.close()
            pinger.close()
        self.under_attack(attack)

    # 6. zero-window readers: memory stays under the cap and comes back. 1,024
    # calls for 256 KiB each: 256 MiB of answers nobody reads, 4x the cap.
    # (Larger answers only make the shared backend busier: the probe's call
    # then waits behind them there, which is not what this attack measures.)
    def zero_window_readers(self):
        req = messages_pb2.SimpleRequest(response_size=256 << 10).SerializeToString()
        conns = []

        def attack():
            for _ in range(4):
                c = Raw(self.target, window=0)
                batch = b""
                for i in range(256):
                    batch += c.headers(1 + 2 * i, "/grpc.testing.TestService/UnaryCall") + \
                        frame(DATA, END_STREAM, 1 + 2 * i, grpc_message(req))
                c.send(batch)
                conns.append(c)
            time.sleep(3)
        self.under_attack(attack)
        peak = self.peak
        for c in conns:
            c.close()
        time.sleep(1.5)
        after = rss_mib(self.pid)
        print("  zero-window readers: RSS baseline %.0f MiB, peak %.0f MiB, after %.0f MiB" % (self.baseline, peak, after))
        assert after < self.baseline + 40, "RSS stayed at %.0f MiB after the readers left (baseline %.0f)" % (after, self.baseline)

    # 7. more streams than the limit on one connection: refused, never a crash
    def too_many_streams(self):
        def attack():
            c = Raw(self.target)
            batch = b""
            for i in range(400):
                batch += c.headers(1 + 2 * i, "/grpc.testing.TestService/StreamingInputCall")
            c.send(batch)
            got = c.frames(1.0)
            refused = [f for f in got if f[0] == RST_STREAM]
            c.close()
            assert refused or c.goaway, "400 streams over a 256 limit were neither refused nor answered with GOAWAY"
        self.under_attack(attack)

    # 8. out of file descriptors: no spinning accept loop, idle connections shed, new clients served
    def fd_exhaustion(self):
        idle = []

        def attack():
            before = cpu_seconds(self.pid)
            start = time.time()
            for _ in range(700):
                try:
                    s = socket.create_connection(tuple(self.target.rsplit(":", 1)[:1]) + (int(self.target.rsplit(":", 1)[1]),), timeout=2)
                    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
                    idle.append(s)
                except OSError:
                    pass
            time.sleep(2)
            used = (cpu_seconds(self.pid) - before) / (time.time() - start)
            # A fresh client is still served.
            stub = test_pb2_grpc.TestServiceStub(grpc.insecure_channel(self.target))
            stub.EmptyCall(empty_pb2.Empty(), timeout=5)
            return used
        try:
            used = self.under_attack(attack)
        finally:
            for s in idle:
                s.close()
        print("  fd exhaustion: gateway used %.0f%% of a core while 700 idle clients held 512 descriptors" % (used * 100))
        assert used < 0.5, "the gateway spun %.0f%% of a core while out of descriptors" % (used * 100)

    # 9. a server-streamed message of 3 MiB passes, and the other streams on that backend connection live
    def large_streamed_message(self):
        def attack():
            req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
                messages_pb2.ResponseParameters(size=3 << 20), messages_pb2.ResponseParameters(size=10)])
            slow = self.stub.StreamingOutputCall(messages_pb2.StreamingOutputCallRequest(
                response_parameters=[messages_pb2.ResponseParameters(size=1, interval_us=200000)] * 5), timeout=10)
            sizes = [len(r.payload.body) for r in self.stub.StreamingOutputCall(req, timeout=10)]
            assert sizes == [3 << 20, 10], sizes
            assert len(list(slow)) == 5
        self.under_attack(attack)

    # 10. an unknown service inside a backend's package is UNIMPLEMENTED, before authentication
    def unknown_service_in_package(self):
        for path in ["/croupier.loyalty.v1.NoSuchService/Do", "/grpc.testing.Nope/Call", "/croupier.staging.v1.X/Y"]:
            call = self.channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            testkit.expect_error(lambda: call(b"", timeout=5), grpc.StatusCode.UNIMPLEMENTED)

    # 11. /metrics: bounded cardinality, valid exposition text
    def metrics_cardinality(self):
        def attack():
            c = Raw(self.target)
            stream = 1
            for i in range(2000):
                path = "/x%d.Svc/M%d%s" % (i, random.randint(0, 1 << 30), "\\" if i % 7 == 0 else "")
                c.call(stream, path)
                stream += 2
                if i % 100 == 99:
                    c.frames(0.05)
            c.close()
        self.under_attack(attack)
        text = fetch_metrics(self.target)
        assert len(text) < 200_000, "/metrics grew to %d bytes" % len(text)
        assert 'method="unknown"' in text, "unknown paths are not counted under one label"
        import re
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? -?[0-9.e+Inf-]+$')
        for line in text.splitlines():
            if line and not line.startswith("#"):
                assert sample.match(line), "invalid exposition line: %r" % line

    # 12. JWT as strict as RFC 7519/7515 and the hardened libraries
    def strict_jwt(self):
        import base64
        import hashlib
        import hmac
        import json
        b64 = testkit.b64url
        now = int(time.time())

        def signed(header_json, payload_json):
            h, p = b64(header_json.encode()), b64(payload_json.encode())
            sig = hmac.new(self.secret, (h + "." + p).encode(), hashlib.sha256).digest()
            return h + "." + p + "." + b64(sig)

        def call(tok):
            return self.stub.CacheableUnaryCall(messages_pb2.SimpleRequest(), metadata=[("authorization", "Bearer " + tok)], timeout=5)
        good = signed('{"alg":"HS256","typ":"JWT"}', json.dumps({"sub": "a", "perms": ["interop:cache"], "exp": now + 600}))
        call(good)  # the control: a strict, valid token passes
        cases = {
            "exp not a number": signed('{"alg":"HS256"}', '{"sub":"a","perms":["interop:cache"],"exp":"%d"}' % (now + 600)),
            "nbf not a number": signed('{"alg":"HS256"}', '{"sub":"a","perms":["interop:cache"],"exp":%d,"nbf":true}' % (now + 600)),
            "no exp": signed('{"alg":"HS256"}', '{"sub":"a","perms":["interop:cache"]}'),
            "crit header": signed('{"alg":"HS256","crit":["x-unknown"],"x-unknown":1}', '{"sub":"a","perms":["interop:cache"],"exp":%d}' % (now + 600)),
            "duplicate key": signed('{"alg":"HS256"}', '{"sub":"a","perms":["interop:cache"],"exp":%d,"sub":"admin"}' % (now + 600)),
            "duplicate escaped key": signed('{"alg":"HS256"}', '{"sub":"a","perms":[],"exp":%d,"p\\u0065rms":["interop:cache"]}' % (now + 600)),
        }
        head, pay, sig = good.split(".")
        raw = base64.urlsafe_b64decode(sig + "=")
        cases["padded signature"] = head + "." + pay + "." + sig + "="
        cases["standard alphabet"] = head + "." + pay + "." + base64.b64encode(raw).decode().rstrip("=")
        # Flip the unused low bits of the last character: same bytes, another encoding.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(sig[-1])
        cases["non-canonical trailing bits"] = head + "." + pay + "." + sig[:-1] + alphabet[last | 0x3]
        assert base64.urlsafe_b64decode(cases["non-canonical trailing bits"].split(".")[2] + "=") == raw
        for name, tok in cases.items():
            if name == "standard alphabet" and "+" not in tok and "/" not in tok:
                continue
            testkit.expect_error(lambda: call(tok), grpc.StatusCode.UNAUTHENTICATED)

    # 13. the interop service refuses sizes it cannot serve, and sends zeros
    def interop_sizes(self):
        for size in [-1, -(1 << 31)]:
            testkit.expect_error(lambda: self.stub.UnaryCall(messages_pb2.SimpleRequest(response_size=size), timeout=5),
                                 grpc.StatusCode.INVALID_ARGUMENT)
            req = messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=size)])
            testkit.expect_error(lambda: list(self.stub.StreamingOutputCall(req, timeout=5)), grpc.StatusCode.INVALID_ARGUMENT)
        testkit.expect_error(lambda: self.stub.UnaryCall(messages_pb2.SimpleRequest(response_size=(1 << 31) - 1), timeout=5),
                             grpc.StatusCode.RESOURCE_EXHAUSTED)
        req = messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=100)] * 3)
        for r in self.stub.StreamingOutputCall(req, timeout=5):
            assert r.payload.body == b"\x00" * 100, r.payload.body[:10]
        dup = self.stub.FullDuplexCall(iter([req]), timeout=5)
        for r in dup:
            assert r.payload.body == b"\x00" * 100
        self.stub.EmptyCall(empty_pb2.Empty(), timeout=5)  # still alive

    # 14. the soak: 10,000 abrupt clients, streams left open by clients that vanish
    def soak(self):
        soak(self)

    def fetch_gauges(self):
        """The gateway's streams, buffered bytes and calls in flight, from /metrics."""
        return {line.split()[0]: float(line.split()[1]) for line in fetch_metrics(self.target).splitlines()
                if line.startswith(("croupier_gateway_streams ", "croupier_gateway_buffered_bytes ", "croupier_gateway_in_flight "))}


def soak(attacks, cycles=10000, workers=4):
    """Connect, call, close abruptly, `cycles` times over `workers` threads;
    every fifth cycle also leaves a server stream and a bidirectional call
    open. Ends with the gateway alive, every stream freed, nothing held,
    and RSS back near where it started."""
    before = rss_mib(attacks.pid)
    empty = b""
    watch = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=100, interval_us=50000)] * 20).SerializeToString()
    errors = []

    def worker(n):
        try:
            for i in range(n):
                c = Raw(attacks.target)
                c.call(1, "/grpc.testing.TestService/EmptyCall", empty)
                if i % 5 == 0:
                    c.call(3, "/grpc.testing.TestService/StreamingOutputCall", watch)
                    c.call(5, "/grpc.testing.TestService/FullDuplexCall", end_stream=False)
                    c.call(7, "/grpc.health.v1.Health/Watch")
                if i % 3 == 0:
                    c.frames(0.001)
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # abrupt: RST
                c.close()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    def attack():
        threads = [threading.Thread(target=worker, args=(cycles // workers,)) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    start = time.time()
    attacks.under_attack(attack)
    elapsed = time.time() - start
    assert not errors, errors[:3]
    time.sleep(1.5)
    gauges = attacks.fetch_gauges()
    after = rss_mib(attacks.pid)
    print("  soak: %d cycles in %.1f s, RSS %.0f -> %.0f MiB, %s" % (cycles, elapsed, before, after, gauges))
    assert gauges.get("croupier_gateway_streams", 99) <= 1, "streams still held after the soak: %s" % gauges
    assert gauges.get("croupier_gateway_buffered_bytes", 1) == 0, "bytes still held after the soak: %s" % gauges
    assert gauges.get("croupier_gateway_in_flight", 1) == 0, "calls still in flight after the soak: %s" % gauges
    assert after < before + 32, "RSS grew from %.0f to %.0f MiB over the soak" % (before, after)


def fetch_metrics(target):
    c = Raw(target)
    block = c.encoder.encode([(":method", "GET"), (":scheme", "http"), (":path", "/metrics"), (":authority", "gw")])
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    body = b""
    end = time.time() + 10
    done = False
    while not done and time.time() < end and not c.closed:
        for kind, flags, stream, payload in c.frames(0.5):
            if kind == DATA and stream == 1:
                body += payload
                done = bool(flags & END_STREAM)
            if kind == HEADERS and stream == 1 and flags & END_STREAM:
                done = True
    c.close()
    return body.decode()


ALL = ["disconnect_mid_call", "rapid_reset", "window_update_flood", "empty_data_flood", "settings_flood", "ping_policy",
       "idle_stream_and_keepalive", "zero_window_readers", "too_many_streams", "fd_exhaustion", "large_streamed_message",
       "unknown_service_in_package", "metrics_cardinality", "strict_jwt", "interop_sizes"] + http1_attacks.NAMES + ["soak"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--gateway-pid", type=int, required=True)
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--cap-mib", type=int, required=True)
    parser.add_argument("--only", default=os.environ.get("HOSTILE_ONLY", ""))
    args = parser.parse_args()
    attacks = Attacks(args.target, args.gateway_pid, args.jwt_secret.encode(), args.cap_mib)
    names = [n for n in args.only.split(",") if n] or ALL
    failed = 0
    for name in names:
        start = time.time()
        try:
            getattr(attacks, name)()
            print("PASS %s (%.1f s)" % (name, time.time() - start))
        except Exception as e:  # noqa: BLE001 - report every attack, keep going while the gateway lives
            failed += 1
            print("FAIL %s: %s" % (name, e))
        sys.stdout.flush()
    print("%d passed, %d failed (hostile)" % (len(names) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
