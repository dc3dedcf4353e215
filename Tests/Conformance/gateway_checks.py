#!/usr/bin/env python3
"""Gateway behaviour seen from an independent client (Python grpcio, and
nghttp for requests grpcio cannot make): authentication failures, spoofed
principal metadata, rate limits, correlation ids, message limits, framing
errors, non-gRPC requests, health, reflection and metrics.

  gateway_checks.py HOST:PORT --jwt-secret SECRET [--down HOST:PORT] [--cli-token TOKEN] [--gateway-pid PID]

The gateway must be configured as in Tests/GatewayTests: CacheableUnaryCall
needs permission interop:cache; EmptyCall is limited to 3 per second.
--down is a gateway whose interop backend is not running.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import grpc
sys.path.insert(0, os.path.dirname(__file__))
import grpc_interop  # noqa: E402
import testkit  # noqa: E402

empty_pb2, messages_pb2, test_pb2_grpc = grpc_interop.load_stubs()


def load_ops_stubs():
    """Health and reflection stubs (module package `ops_protos`)."""
    testkit.compile_stubs("ops_protos", [("grpc/health/v1/health.proto", "health"),
                                         ("grpc/reflection/v1/reflection.proto", "reflection")])
    from ops_protos import health_pb2, health_pb2_grpc, reflection_pb2, reflection_pb2_grpc  # noqa: E402
    return health_pb2, health_pb2_grpc, reflection_pb2, reflection_pb2_grpc


health_pb2, health_pb2_grpc, reflection_pb2, reflection_pb2_grpc = load_ops_stubs()
token = testkit.token
expect_error = testkit.expect_error


class Checks:
    def __init__(self, target, secret, down, cli_token, gateway_pid, tls_target):
        self.tls_target = tls_target
        self.gateway_pid = gateway_pid
        self.cli_token = cli_token
        self.target = target
        self.secret = secret.encode()
        self.down = down
        self.channel = grpc.insecure_channel(target)
        self.stub = test_pb2_grpc.TestServiceStub(self.channel)

    def bearer(self, **claims):
        base = {"sub": "alice", "perms": ["interop:cache"], "exp": int(time.time()) + 600}
        base.update(claims)
        return [("authorization", "Bearer " + token(self.secret, base))]

    def cacheable(self, metadata):
        return self.stub.CacheableUnaryCall(messages_pb2.SimpleRequest(), metadata=metadata)

    # --- authentication and authorization ---
    def no_token(self):
        expect_error(lambda: self.cacheable([]), grpc.StatusCode.UNAUTHENTICATED, "missing")

    def bad_signature(self):
        t = token(b"not-the-secret", {"sub": "alice", "perms": ["interop:cache"], "exp": int(time.time()) + 60})
        expect_error(lambda: self.cacheable([("authorization", "Bearer " + t)]), grpc.StatusCode.UNAUTHENTICATED, "signature")

    def expired(self):
        expect_error(lambda: self.cacheable(self.bearer(exp=int(time.time()) - 10)), grpc.StatusCode.UNAUTHENTICATED, "expired")

    def not_yet_valid(self):
        expect_error(lambda: self.cacheable(self.bearer(nbf=int(time.time()) + 600)), grpc.StatusCode.UNAUTHENTICATED, "not valid before")

    def wrong_alg(self):
        t = token(self.secret, {"sub": "alice", "perms": ["interop:cache"]}, alg="HS512")
        expect_error(lambda: self.cacheable([("authorization", "Bearer " + t)]), grpc.StatusCode.UNAUTHENTICATED, "HS512")

    def alg_none(self):
        t = token(self.secret, {"sub": "alice", "perms": ["interop:cache"]}, alg="none", sign=False)
        expect_error(lambda: self.cacheable([("authorization", "Bearer " + t)]), grpc.StatusCode.UNAUTHENTICATED, "none")

    def missing_permission(self):
        expect_error(lambda: self.cacheable(self.bearer(perms=["other"])), grpc.StatusCode.PERMISSION_DENIED, "interop:cache")

    def valid_token(self):
        r = self.cacheable(self.bearer())
        assert r.username == "alice" and r.oauth_scope == "interop:cache", r

    def croupier_token_accepted(self):
        if not self.cli_token:
            return
        r = self.cacheable([("authorization", "Bearer " + self.cli_token)])
        assert r.username == "bob" and r.oauth_scope == "interop:cache", r

    def spoofed_principal_ignored(self):
        spoof = [("x-croupier-principal", "admin"), ("x-croupier-permissions", "everything")]
        r = self.stub.UnaryCall(messages_pb2.SimpleRequest(), metadata=spoof)
        assert r.username == "" and r.oauth_scope == "", "spoofed metadata reached the backend: %r" % r
        r = self.cacheable(self.bearer() + spoof)
        assert r.username == "alice" and r.oauth_scope == "interop:cache", r

    # --- rate limits ---
    def rate_limit_exceeded_then_refilled(self):
        md = self.bearer(sub="rate-tester")
        time.sleep(1.1)  # a full bucket
        for _ in range(3):
            self.stub.EmptyCall(empty_pb2.Empty(), metadata=md)
        e = expect_error(lambda: self.stub.EmptyCall(empty_pb2.Empty(), metadata=md), grpc.StatusCode.RESOURCE_EXHAUSTED)
        retry = dict(e.trailing_metadata() or []).get("retry-after-ms")
        assert retry is not None and 0 < int(retry) <= 1000, "retry-after-ms trailer: %r" % retry
        # Another principal has its own bucket.
        self.stub.EmptyCall(empty_pb2.Empty(), metadata=self.bearer(sub="someone-else"))
        time.sleep(int(retry) / 1000 + 0.05)
        self.stub.EmptyCall(empty_pb2.Empty(), metadata=md)

    # --- correlation ids (UnaryCall: EmptyCall is rate-limited here) ---
    def correlation_id_kept(self):
        _, call = self.stub.UnaryCall.with_call(messages_pb2.SimpleRequest(), metadata=[("x-correlation-id", "req-12345678.abc_DEF")])
        assert ("x-correlation-id", "req-12345678.abc_DEF") in call.initial_metadata(), call.initial_metadata()

    def correlation_id_made(self):
        _, call = self.stub.UnaryCall.with_call(messages_pb2.SimpleRequest())
        made = dict(call.initial_metadata()).get("x-correlation-id", "")
        assert len(made) == 32 and all(c in "0123456789abcdef" for c in made), made

    def correlation_id_malformed_replaced(self):
        for bad in ["short", "has space here", "x" * 129, "semi;colon-12345"]:
            _, call = self.stub.UnaryCall.with_call(messages_pb2.SimpleRequest(), metadata=[("x-correlation-id", bad)])
            got = dict(call.initial_metadata()).get("x-correlation-id", "")
            assert got != bad and len(got) == 32, (bad, got)

    # --- limits and framing ---
    def oversized_message(self):
        big = messages_pb2.SimpleRequest(payload=messages_pb2.Payload(body=b"\x00" * (5 << 20)))
        expect_error(lambda: self.stub.UnaryCall(big), grpc.StatusCode.RESOURCE_EXHAUSTED, "exceeds")
        self.stub.UnaryCall(messages_pb2.SimpleRequest())  # the connection still serves

    def nghttp(self, path, body, content_type="application/grpc", headers=()):
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(body)
        extra = [arg for h in headers for arg in ("-H", h)]
        out = subprocess.run(
            ["nghttp", "-v", "-H", ":method: POST", "-H", "content-type: " + content_type, "-H", "te: trailers"] + extra +
            ["-d", f.name, "http://%s%s" % (self.target, path)], capture_output=True, text=True, timeout=20)
        os.unlink(f.name)
        return out.stdout + out.stderr

    def longest_grpc_timeout(self):
        # The largest timeouts the header can carry (8 digits of hours) are
        # served like any other: no deadline arithmetic overflows on the way
        # through the gateway and over Wire to the backend.
        for timeout in ["99999999H", "99999999M", "99999999S"]:
            out = self.nghttp("/grpc.testing.TestService/UnaryCall", b"\x00\x00\x00\x00\x00", headers=["grpc-timeout: " + timeout])
            assert "grpc-status: 0" in out, (timeout, out)
        self.stub.UnaryCall(messages_pb2.SimpleRequest(), timeout=10)

    def malformed_prefix(self):
        out = self.nghttp("/grpc.testing.TestService/UnaryCall", b"\x07\x00\x00\x00\x00")
        assert "grpc-status: 13" in out and "flag byte" in out, out

    def truncated_message(self):
        out = self.nghttp("/grpc.testing.TestService/UnaryCall", b"\x00\x00\x00\x00\x10abc")
        assert "grpc-status: 13" in out and "inside a gRPC message" in out, out

    def unary_with_two_messages(self):
        # Unary methods are forwarded through the channel's unary path: the gateway counts the messages.
        out = self.nghttp("/grpc.testing.TestService/UnaryCall", b"\x00\x00\x00\x00\x00" * 2)
        assert "grpc-status: 3" in out and "got more" in out, out

    def unary_with_no_message(self):
        out = self.nghttp("/grpc.testing.TestService/UnaryCall", b"")
        assert "grpc-status: 3" in out and "got none" in out, out

    def unary_reset_before_request_ends(self):
        # A unary call's request is taken whole at END_STREAM. A client that
        # sends one message, never half-closes and then cancels (RST_STREAM)
        # ends the call as CANCELLED, counted once; nothing stays in flight or in memory.
        import threading
        hold = threading.Event()

        def requests():
            yield messages_pb2.SimpleRequest(response_size=1)
            hold.wait(5)

        call = self.channel.stream_unary("/grpc.testing.TestService/UnaryCall",
                                         request_serializer=messages_pb2.SimpleRequest.SerializeToString,
                                         response_deserializer=messages_pb2.SimpleResponse.FromString)
        before = self.metric('croupier_gateway_requests_total{method="/grpc.testing.TestService/UnaryCall",status="CANCELLED"}')
        future = call.future(requests())
        time.sleep(0.3)
        future.cancel()
        hold.set()
        for _ in range(50):
            if self.metric('croupier_gateway_requests_total{method="/grpc.testing.TestService/UnaryCall",status="CANCELLED"}') == before + 1:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("no CANCELLED call counted after the reset")
        assert self.metric("croupier_gateway_in_flight") == 0
        # Only the /metrics request's own stream is left: the reset one was released.
        assert self.metric("croupier_gateway_streams") == 1, self.metric("croupier_gateway_streams")
        assert self.stub.UnaryCall(messages_pb2.SimpleRequest(response_size=3)).payload.body == b"\0" * 3

    def metrics_text(self):
        return subprocess.run(["curl", "-s", "--http2-prior-knowledge", "http://%s/metrics" % self.target],
                              capture_output=True, text=True, timeout=10).stdout

    def metric(self, name):
        for line in self.metrics_text().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0

    def non_grpc_content_type(self):
        out = self.nghttp("/grpc.testing.TestService/UnaryCall", b"{}", content_type="text/plain")
        assert ":status: 415" in out, out

    def unknown_service(self):
        out = self.nghttp("/no.such.Service/Method", b"\x00\x00\x00\x00\x00")
        assert "grpc-status: 12" in out, out

    # --- backend down ---
    def backend_down_is_unavailable_quickly(self):
        if not self.down:
            return
        stub = test_pb2_grpc.TestServiceStub(grpc.insecure_channel(self.down))
        start = time.time()
        expect_error(lambda: stub.EmptyCall(empty_pb2.Empty(), timeout=10), grpc.StatusCode.UNAVAILABLE)
        assert time.time() - start < 2, "UNAVAILABLE took %.1f s" % (time.time() - start)

    # --- timeouts (the test config sets 1 s for the header and TLS handshake timeouts) ---
    def silent_connection_is_closed(self):
        import socket
        for address in [self.target] + ([self.tls_target] if self.tls_target else []):
            host, port = address.rsplit(":", 1)
            s = socket.create_connection((host, int(port)))
            s.settimeout(5)
            start = time.time()
            try:
                while s.recv(4096):  # h2c sends SETTINGS (and GOAWAY); TLS sends nothing
                    pass
            except ConnectionResetError:
                pass
            took = time.time() - start
            s.close()
            assert 0.9 < took < 3, "%s closed a silent connection after %.1f s" % (address, took)

    # --- flow control and drain (need the gateway's pid) ---
    def rss_mib(self):
        with open("/proc/%d/status" % self.gateway_pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0

    def slow_reader_does_not_grow_gateway_memory(self):
        if not self.gateway_pid:
            return
        before = self.rss_mib()
        # 200 x 1 MiB streamed to a client that does not read for 3 s.
        req = messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=1 << 20) for _ in range(200)])
        responses = self.stub.StreamingOutputCall(req)
        time.sleep(3)
        during = self.rss_mib()
        count = sum(1 for _ in responses)
        assert count == 200, count
        assert during - before < 48, "gateway grew from %.0f to %.0f MiB while the client did not read" % (before, during)
        print("  gateway RSS %.0f MiB before, %.0f MiB with a stalled 200 MiB stream" % (before, during))

    def pipelined_heads_held_back_are_not_timed_out(self):
        """HTTP/1.1: while its answers go unread the gateway stops reading pipelined requests (256 KiB of
        answers wait). A head it holds back is the gateway's wait, not a slow client's: the client reads only
        after twice the 1 s header timeout, and every answer comes, none a 408."""
        import http1_attacks
        count = 4000
        requests = http1_attacks.pipelined_preflights(count)
        s = http1_attacks.connect(self.target, timeout=30)
        sent, _ = http1_attacks.send_until_stalled(s, requests)
        time.sleep(2)
        raw, closed = http1_attacks.read_until_closed(s, limit=1 << 40)
        s.close()
        got = http1_attacks.statuses(raw)
        assert sent < len(requests), "the gateway read every request: none was held back, nothing was tested"
        assert closed and len(got) == count and set(got) == {204}, (len(got), sorted(set(got)))

    def graceful_drain_finishes_in_flight_calls(self):
        if not self.gateway_pid:
            return
        import signal
        req = messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=10, interval_us=100000) for _ in range(10)])
        responses = self.stub.StreamingOutputCall(req)
        next(responses)
        os.kill(self.gateway_pid, signal.SIGTERM)  # the launcher restarts it afterwards
        rest = sum(1 for _ in responses)
        assert rest == 9, rest

    # --- operations ---
    def health(self):
        stub = health_pb2_grpc.HealthStub(self.channel)
        assert stub.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
        r = stub.Check(health_pb2.HealthCheckRequest(service="grpc.testing.TestService"))
        assert r.status == health_pb2.HealthCheckResponse.SERVING, r
        expect_error(lambda: stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service")), grpc.StatusCode.NOT_FOUND)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service="grpc.testing.TestService"))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()

    def reflection(self):
        from google.protobuf import descriptor_pb2
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.testing.TestService"),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.testing.SimpleRequest"),
                    reflection_pb2.ServerReflectionRequest(file_by_filename="no/such.proto")]
        responses = list(stub.ServerReflectionInfo(iter(requests)))
        names = {s.name for s in responses[0].list_services_response.service}
        assert {"grpc.testing.TestService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} <= names, names
        files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in responses[1].file_descriptor_response.file_descriptor_proto]
        assert files[0].name == "grpc/testing/test.proto", [f.name for f in files]
        assert [m.name for m in files[0].service[0].method][:2] == ["EmptyCall", "UnaryCall"]
        assert {"grpc/testing/empty.proto", "grpc/testing/messages.proto"} <= {f.name for f in files}
        files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in responses[2].file_descriptor_response.file_descriptor_proto]
        assert files[0].name == "grpc/testing/messages.proto"
        assert responses[3].error_response.error_code == 5

    def reflection_v1alpha(self):
        # grpcio-reflection's own client, which speaks only v1alpha (as older grpcurl, Postman and Evans do).
        from google.protobuf import descriptor_pool
        from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
        db = ProtoReflectionDescriptorDatabase(self.channel)
        services = set(db.get_services())
        assert {"grpc.testing.TestService", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= services, services
        pool = descriptor_pool.DescriptorPool(db)
        service = pool.FindServiceByName("croupier.loyalty.v1.LoyaltyService")
        assert "ManualReward" in [m.name for m in service.methods], [m.name for m in service.methods]
        message = pool.FindMessageTypeByName("grpc.testing.SimpleRequest")
        assert "response_size" in message.fields_by_name

    def metrics(self):
        out = self.metrics_text()
        for needle in ['croupier_gateway_requests_total{method="/grpc.testing.TestService/EmptyCall",status="OK"}',
                       "croupier_gateway_request_duration_seconds_bucket", "croupier_gateway_in_flight",
                       'croupier_gateway_rate_limited_total{method="/grpc.testing.TestService/EmptyCall"}',
                       'croupier_gateway_auth_failures_total{reason="invalid_token"}']:
            assert needle in out, "%s missing from /metrics:\n%s" % (needle, out)
        # Every check before this one has ended its calls: only this request's stream is alive.
        assert self.metric("croupier_gateway_streams") == 1, "streams alive: %s" % self.metric("croupier_gateway_streams")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--down")
    parser.add_argument("--cli-token", help="a token printed by `croupier token --sub bob --perms interop:cache`")
    parser.add_argument("--gateway-pid", type=int, help="the gateway process (memory under a stalled reader; SIGTERM drain, last)")
    parser.add_argument("--tls-target", help="the TLS port (handshake timeout check)")
    args = parser.parse_args()
    checks = Checks(args.target, args.jwt_secret, args.down, args.cli_token, args.gateway_pid, args.tls_target)
    names = [n for n in Checks.__dict__ if not n.startswith("_") and n not in ("bearer", "cacheable", "nghttp", "rss_mib", "metric", "metrics_text")]
    # The drain check stops the gateway: run it last.
    names.remove("graceful_drain_finishes_in_flight_calls")
    names.append("graceful_drain_finishes_in_flight_calls")
    failed = 0
    for name in names:
        try:
            getattr(checks, name)()
            print("PASS %s" % name, flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
    print("%d passed, %d failed" % (len(names) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
