#!/usr/bin/env python3
"""gRPC interop test cases (grpc/grpc doc/interop-test-descriptions.md) run
with Python grpcio, an independent gRPC implementation, against the gateway.

  grpc_interop.py HOST:PORT [--tls CA_PEM] [--cases a,b,...]

Prints one line per case and exits 1 if any failed.
"""
import argparse
import os
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402


def load_stubs():
    """Python stubs for grpc.testing (module package `interop_protos`)."""
    testkit.compile_stubs(
        "interop_protos", [("grpc/testing/%s.proto" % n, n) for n in ("test", "messages", "empty")],
        rewrite=lambda text: text.replace('import "grpc/testing/', 'import "interop_protos/'))
    from interop_protos import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402
    return empty_pb2, messages_pb2, test_pb2_grpc


empty_pb2 = messages_pb2 = test_pb2_grpc = None


def payload(size):
    return messages_pb2.Payload(body=b"\x00" * size)


def expect_code(err, code, message=None):
    assert err.code() == code, "expected %s, got %s: %s" % (code, err.code(), err.details())
    if message is not None:
        assert err.details() == message, "expected message %r, got %r" % (message, err.details())


def empty_unary(stub, _):
    r = stub.EmptyCall(empty_pb2.Empty())
    assert r == empty_pb2.Empty()


def large_unary(stub, _):
    r = stub.UnaryCall(messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828)))
    assert len(r.payload.body) == 314159


def client_streaming(stub, _):
    sizes = [27182, 8, 1828, 45904]
    r = stub.StreamingInputCall(iter([messages_pb2.StreamingInputCallRequest(payload=payload(s)) for s in sizes]))
    assert r.aggregated_payload_size == 74922, r


def server_streaming(stub, _):
    sizes = [31415, 9, 2653, 58979]
    req = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=s) for s in sizes])
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(req)]
    assert got == sizes, got


class Requests:
    """A request iterator the test feeds one message at a time."""

    def __init__(self):
        import queue
        self.q = queue.Queue()

    def put(self, m):
        self.q.put(m)

    def close(self):
        self.q.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        m = self.q.get()
        if m is None:
            raise StopIteration
        return m


def ping_pong(stub, _):
    pairs = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
    reqs = Requests()
    responses = stub.FullDuplexCall(reqs)
    for out, inn in pairs:
        reqs.put(messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=out)], payload=payload(inn)))
        r = next(responses)
        assert len(r.payload.body) == out
    reqs.close()
    assert list(responses) == []


def empty_stream(stub, _):
    assert list(stub.FullDuplexCall(iter([]))) == []


def timeout_on_sleeping_server(stub, _):
    reqs = Requests()
    reqs.put(messages_pb2.StreamingOutputCallRequest(payload=payload(27182)))
    try:
        for _ in stub.FullDuplexCall(reqs, timeout=0.001):
            pass
        raise AssertionError("expected DEADLINE_EXCEEDED")
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        reqs.close()


def cancel_after_begin(stub, _):
    reqs = Requests()
    future = stub.StreamingInputCall.future(reqs)
    future.cancel()
    try:
        future.result()
        raise AssertionError("expected CANCELLED")
    except grpc.FutureCancelledError:
        pass
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.CANCELLED)
    reqs.close()


def cancel_after_first_response(stub, _):
    reqs = Requests()
    responses = stub.FullDuplexCall(reqs)
    reqs.put(messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=31415)], payload=payload(27182)))
    r = next(responses)
    assert len(r.payload.body) == 31415
    responses.cancel()
    try:
        next(responses)
        raise AssertionError("expected CANCELLED")
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.CANCELLED)
    reqs.close()


def status_code_and_message(stub, _):
    message = "test status message"
    status = messages_pb2.EchoStatus(code=2, message=message)
    try:
        stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status))
        raise AssertionError("expected UNKNOWN")
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.UNKNOWN, message)
    try:
        list(stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(response_status=status)])))
        raise AssertionError("expected UNKNOWN")
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.UNKNOWN, message)


def special_status_message(stub, _):
    message = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
    try:
        stub.UnaryCall(messages_pb2.SimpleRequest(response_status=messages_pb2.EchoStatus(code=2, message=message)))
        raise AssertionError("expected UNKNOWN")
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.UNKNOWN, message)


def custom_metadata(stub, _):
    initial = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
    trailing = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
    r, call = stub.UnaryCall.with_call(
        messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828)), metadata=[initial, trailing])
    assert len(r.payload.body) == 314159
    assert initial in call.initial_metadata(), call.initial_metadata()
    assert trailing in call.trailing_metadata(), call.trailing_metadata()
    responses = stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)], payload=payload(271828))]),
        metadata=[initial, trailing])
    assert [len(m.payload.body) for m in responses] == [314159]
    assert initial in responses.initial_metadata(), responses.initial_metadata()
    assert trailing in responses.trailing_metadata(), responses.trailing_metadata()


def unimplemented_method(stub, _):
    try:
        stub.UnimplementedCall(empty_pb2.Empty())
        raise AssertionError("expected UNIMPLEMENTED")
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.UNIMPLEMENTED)


def unimplemented_service(_, channel):
    stub = test_pb2_grpc.UnimplementedServiceStub(channel)
    try:
        stub.UnimplementedCall(empty_pb2.Empty())
        raise AssertionError("expected UNIMPLEMENTED")
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.UNIMPLEMENTED)


CASES = [empty_unary, large_unary, client_streaming, server_streaming, ping_pong, empty_stream,
         timeout_on_sleeping_server, cancel_after_begin, cancel_after_first_response, status_code_and_message,
         special_status_message, custom_metadata, unimplemented_method, unimplemented_service]


def open_channel(target, ca):
    if ca:
        with open(ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", "localhost")])
    return grpc.insecure_channel(target)


def main():
    global empty_pb2, messages_pb2, test_pb2_grpc
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--tls", help="CA certificate (PEM) to trust; plaintext h2c without it")
    parser.add_argument("--cases", help="comma-separated subset")
    args = parser.parse_args()
    empty_pb2, messages_pb2, test_pb2_grpc = load_stubs()
    channel = open_channel(args.target, args.tls)
    grpc.channel_ready_future(channel).result(timeout=10)
    stub = test_pb2_grpc.TestServiceStub(channel)
    wanted = set(args.cases.split(",")) if args.cases else None
    failed = 0
    for case in CASES:
        if wanted and case.__name__ not in wanted:
            continue
        start = time.time()
        try:
            case(stub, channel)
            print("PASS %s (%.0f ms)" % (case.__name__, (time.time() - start) * 1000), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print("FAIL %s: %s: %s" % (case.__name__, type(e).__name__, e), flush=True)
    print("%d passed, %d failed (%s)" % (len([c for c in CASES if not wanted or c.__name__ in wanted]) - failed,
                                          failed, "TLS" if args.tls else "h2c"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
