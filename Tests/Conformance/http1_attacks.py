"""HTTP/1.1 attacks on the gateway, mixed into gateway_hostile.Attacks
(which supplies `target`, `pid`, `under_attack` and `fetch_gauges`): raw
sockets, bytes written by hand, so nothing is tidied up by a client library.
"""
import socket
import struct
import threading
import time


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS for %d" % pid)


def connect(target, timeout=10):
    host, port = target.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_until_closed(sock, limit=1 << 20):
    data = bytearray()
    try:
        while len(data) < limit:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return bytes(data), True
            data += chunk
    except socket.timeout:
        return bytes(data), False
    except ConnectionResetError:
        return bytes(data), True
    return bytes(data), False


def statuses(raw):
    """The status codes of the responses in `raw`, in order (bodies skipped by content-length or chunks)."""
    out, at = [], 0
    while at < len(raw):
        end = raw.find(b"\r\n\r\n", at)
        if end < 0:
            break
        lines = raw[at:end].decode("latin-1").split("\r\n")
        out.append(int(lines[0].split()[1]))
        fields = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        at = end + 4
        if "content-length" in fields:
            at += int(fields["content-length"])
        elif fields.get("transfer-encoding") == "chunked":
            while True:
                line_end = raw.find(b"\r\n", at)
                size = int(raw[at:line_end].split(b";")[0], 16)
                at = line_end + 2 + size + 2
                if size == 0:
                    break
    return out


def pipelined_preflights(count):
    """`count` CORS preflights back to back, the last closing the connection. Each asks for 4 KiB of
    request headers, which the answer echoes: no call holds an answer back, and each is that big."""
    asked = ",".join("x-h%04d" % i for i in range(512))
    preflight = (b"OPTIONS /grpc.testing.TestService/UnaryCall HTTP/1.1\r\nHost: g\r\nOrigin: https://console.example\r\n"
                 b"Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: %s\r\n%%s\r\n" % asked.encode())
    return (preflight % b"") * (count - 1) + preflight % b"Connection: close\r\n"


def send_until_stalled(sock, data, stall=0.5, timeout=30):
    """Sends `data` from a thread and reads nothing, until the sending stalls for `stall` seconds (the peer
    stopped reading: TCP holds the rest back) or ends. Returns (bytes sent by then, the sending thread)."""
    sent = [0]

    def send_all():
        view = memoryview(data)
        while sent[0] < len(data):
            sent[0] += sock.send(view[sent[0]:sent[0] + 65536])
    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    last, still_since, deadline = -1, time.time(), time.time() + timeout
    while sender.is_alive() and time.time() < deadline:
        time.sleep(0.05)
        if sent[0] != last:
            last, still_since = sent[0], time.time()
        elif time.time() - still_since >= stall:
            break
    return sent[0], sender


# A JSON call whose body is still to come: the gateway waits for it.
JSON_CALL = b"POST /grpc.testing.TestService/UnaryCall HTTP/1.1\r\nHost: g\r\ncontent-type: application/json\r\n"


class HTTP1Attacks:
    # 17. requests two parsers could read two ways are refused with RFC 9112's status, and the connection closed
    def http1_ambiguous_requests(self):
        cases = [
            (b"POST /x/y HTTP/1.1\r\nHost: g\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            (b"POST /x/y HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            (b"POST /x/y HTTP/1.1\r\nHost: g\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400),
            (b"POST /x/y HTTP/1.1\r\nHost: g\r\nContent-Length: +4\r\n\r\nabcd", 400),
            (JSON_CALL + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            (JSON_CALL + b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcdXX", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: g\r\nX-A: b\r\n c\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: g\nX-A: b\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: g\r\nX-A: b\rc\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost : g\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: g\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
            (b"GET /healthz HTTP/3.0\r\nHost: g\r\n\r\n", 505),
            (b"GET http://elsewhere/healthz HTTP/1.1\r\nHost: g\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\nHost: g\r\nExpect: 200-ok\r\n\r\n", 417),
        ]

        def attack():
            for request, want in cases:
                s = connect(self.target)
                s.sendall(request)
                raw, closed = read_until_closed(s)
                s.close()
                got = statuses(raw)
                assert got == [want] and closed, "%r: answered %s, closed %s" % (request[:60], got, closed)
            # A body that holds a request is a body: the JSON call is refused, the real next request answered.
            s = connect(self.target)
            hidden = b"GET /metrics HTTP/1.1\r\nHost: g\r\n\r\n"
            s.sendall(b"POST /grpc.testing.TestService/UnaryCall HTTP/1.1\r\nHost: g\r\ncontent-type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%sGET /healthz HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n" % (len(hidden), hidden))
            raw, closed = read_until_closed(s)
            s.close()
            assert statuses(raw) == [400, 200] and raw.endswith(b"ok\n") and b"croupier_gateway" not in raw, raw[:400]
        self.under_attack(attack)

    # 18. slowloris: 200 clients trickling a request head are answered 408 at the header timeout and closed
    def http1_slowloris(self):
        socks = []

        def attack():
            start = time.time()
            for _ in range(200):
                s = connect(self.target, timeout=15)
                s.sendall(b"POST /grpc.testing.TestService/UnaryCall HTTP/1.1\r\nHost: g\r\n")
                socks.append(s)
            closed = 0
            deadline = start + 12
            while time.time() < deadline and closed < len(socks):
                for s in socks:
                    if s.fileno() < 0:
                        continue
                    try:
                        s.send(b"X")  # a byte now and then: activity, but never the end of the head
                    except OSError:
                        pass
                time.sleep(1)
                closed = 0
                for s in socks:
                    s.setblocking(False)
                    try:
                        data = s.recv(4096)
                        if b" 408 " in data or not data:
                            closed += 1
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed += 1
                    s.setblocking(True)
            return closed, time.time() - start
        try:
            closed, took = self.under_attack(attack)
        finally:
            for s in socks:
                s.close()
        print("  slowloris: %d of 200 trickling clients answered 408 and closed within %.1f s" % (closed, took))
        assert closed == 200, "%d of 200 slowloris clients still open after %.1f s" % (closed, took)

    # 19. request bodies far over the message limit: refused, the rest dropped or the connection closed; memory bounded
    def http1_oversized_bodies(self):
        answers = []

        def one():
            s = connect(self.target, timeout=20)
            s.sendall(b"POST /grpc.testing.TestService/UnaryCall HTTP/1.1\r\nHost: g\r\ncontent-type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % (64 << 20))
            got = []
            reader = threading.Thread(target=lambda: got.append(read_until_closed(s)[0]), daemon=True)
            reader.start()
            block = b" " * (256 << 10)
            try:
                for _ in range(256):
                    s.sendall(block)
            except OSError:
                pass  # closed by the gateway once the body went past what it drops
            reader.join(20)
            s.close()
            answers.append(statuses(got[0]) if got else [])

        def attack():
            threads = [threading.Thread(target=one) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.under_attack(attack)
        refused = sum(1 for a in answers if a == [429])
        print("  oversized bodies: 16 clients sent 64 MiB JSON bodies; %d read their 429 before the close" % refused)
        assert all(a in ([429], []) for a in answers), answers
        assert refused >= 8, "only %d of 16 oversized bodies were answered 429: %s" % (refused, answers)

    # 20. a client that pipelines 1,000 gRPC-Web calls for 256 KiB each
    # without reading (4x the memory cap in answers): held back by TCP, and
    # every answer comes, in order, once it reads
    def http1_pipelining_without_reading(self):
        count = 1000
        s = connect(self.target, timeout=30)
        message = bytes([0x10, 0x80, 0x80, 0x10])  # SimpleRequest{response_size: 262144}
        call = (b"POST /grpc.testing.TestService/UnaryCall HTTP/1.1\r\nHost: g\r\ncontent-type: application/grpc-web+proto\r\n"
                b"Content-Length: 9\r\n%s\r\n" + struct.pack(">BI", 0, len(message)) + message)
        requests = (call % b"") * (count - 1) + call % b"Connection: close\r\n"
        sender = threading.Thread(target=lambda: s.sendall(requests), daemon=True)

        def attack():
            sender.start()
            time.sleep(3)  # nobody reads: the gateway must not make and keep all the answers
            return read_until_closed(s, limit=1 << 40)
        raw, closed = self.under_attack(attack)
        sender.join(5)
        s.close()
        got = statuses(raw)
        print("  pipelining: %d answers, %.0f MiB, read after a 3 s pause" % (len(got), len(raw) / 1048576.0))
        assert closed and len(got) == count and set(got) == {200}, (len(got), set(got), closed)
        assert len(raw) > 3 * (self.cap_mib << 20), "the answers (%d bytes) are too small to test the cap" % len(raw)

    # 21. a client that pipelines 12,000 CORS preflights (answers with no
    # body, ended at once, so no call's flow control holds them back) and
    # reads nothing: once 256 KiB of answers wait the gateway stops reading,
    # so the client's sending stalls (TCP holds it back) long before all
    # 50 MiB of answers are made, and the gateway does not grow; every answer
    # comes, in order, once the client reads
    def http1_pipelined_preflights_without_reading(self):
        count = 12000
        s = connect(self.target, timeout=30)
        requests = pipelined_preflights(count)
        seen = {}

        def attack():
            before = rss_mib(self.pid)
            seen["sent"], _ = send_until_stalled(s, requests)
            seen["grown"] = rss_mib(self.pid) - before
            return read_until_closed(s, limit=1 << 40)
        raw, closed = self.under_attack(attack)
        s.close()
        got = statuses(raw)
        print("  pipelined preflights: sending stalled at %.1f of %.1f MiB, the gateway grew %.1f MiB meanwhile; then %d answers, %.0f MiB"
              % (seen["sent"] / 1048576.0, len(requests) / 1048576.0, seen["grown"], len(got), len(raw) / 1048576.0))
        assert seen["sent"] < len(requests) / 2, "the gateway read %d of %d bytes while nobody read its answers" % (seen["sent"], len(requests))
        assert seen["grown"] < 16, "the gateway grew %.1f MiB while nobody read its answers" % seen["grown"]
        assert closed and len(got) == count and set(got) == {204}, (len(got), set(got), closed)
        assert len(raw) > 40 << 20, "the answers (%d bytes) are too small to test the cap" % len(raw)

    # 22. clients that hang up on a gRPC-Web stream over HTTP/1.1: every call is cancelled, nothing is held
    def http1_hangup_mid_stream(self):
        # {size 100} at once, then 49 × {size 100, interval 200 ms}: about 10 s
        watch = bytes([0x12, 0x02, 0x08, 0x64]) + bytes([0x12, 0x06, 0x08, 0x64, 0x10, 0xc0, 0x9a, 0x0c]) * 49
        frame = struct.pack(">BI", 0, len(watch)) + watch

        def attack():
            for _ in range(100):
                s = connect(self.target)
                s.sendall(b"POST /grpc.testing.TestService/StreamingOutputCall HTTP/1.1\r\nHost: g\r\n"
                          b"content-type: application/grpc-web+proto\r\nContent-Length: %d\r\n\r\n%s" % (len(frame), frame))
                assert s.recv(4096).startswith(b"HTTP/1.1 200 "), "no response head"
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
        self.under_attack(attack)
        deadline = time.time() + 5
        gauges = self.fetch_gauges()
        while time.time() < deadline and (gauges.get("croupier_gateway_in_flight", 1) > 0 or gauges.get("croupier_gateway_streams", 99) > 1):
            time.sleep(0.2)
            gauges = self.fetch_gauges()
        assert gauges.get("croupier_gateway_in_flight", 1) == 0 and gauges.get("croupier_gateway_streams", 99) <= 1, gauges


    # 23. large JSON bodies (4 MB each way) from several clients, some hanging up
    # mid-conversion: every call that stays is answered whole, and the probe
    # is served meanwhile (the conversion runs off the event loops)
    def http1_large_json_bodies(self):
        import base64
        import json
        size = 3000000
        body = json.dumps({"responseSize": size, "payload": {"body": base64.b64encode(b"\x01" * size).decode()}}).encode()
        call = (b"POST /grpc.testing.TestService/UnaryCall HTTP/1.1\r\nHost: g\r\ncontent-type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body
        results, errors = [], []

        def client(n):
            try:
                for i in range(6):
                    s = connect(self.target, timeout=30)
                    s.sendall(call)
                    if (n + i) % 3 == 0:
                        s.close()  # gone while its body is converted
                        continue
                    raw, _ = read_until_closed_or_answered(s)
                    s.close()
                    head, _, rest = raw.partition(b"\r\n\r\n")
                    results.append((int(head.split()[1]), len(json.loads(rest)["payload"]["body"])))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        def attack():
            threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.under_attack(attack)
        print("  large JSON bodies: %d calls answered whole; the probe's slowest answer meanwhile took %.0f ms"
              % (len(results), self.probe_worst * 1000))
        assert not errors, errors[:3]
        assert results and all(r == (200, len(base64.b64encode(b"\x01" * size))) for r in results), results[:3]


def read_until_closed_or_answered(sock):
    """One response with a Content-Length, read whole."""
    data = bytearray()
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            length = [l for l in data[:end].decode("latin-1").lower().split("\r\n") if l.startswith("content-length:")]
            if length and len(data) >= end + 4 + int(length[0].split(":")[1]):
                return bytes(data), False
        chunk = sock.recv(1 << 20)
        if not chunk:
            return bytes(data), True
        data += chunk


NAMES = ["http1_ambiguous_requests", "http1_slowloris", "http1_oversized_bodies", "http1_pipelining_without_reading",
         "http1_pipelined_preflights_without_reading", "http1_hangup_mid_stream", "http1_large_json_bodies"]
