import Foundation
import Synchronization
import TestSupport
@testable import Wire
import XCTest

/// The Wire transport over real sockets: every call kind, status, deadlines,
/// cancellation, authentication, reconnection and graceful drain.
final class WireTransportTests: XCTestCase {
    static let secret = Array("test-internal-secret".utf8)

    func startServer(_ services: [any RPCService] = [InteropTestService()], limits: WireLimits = WireLimits())
        throws -> (WireServer, UInt16)
    {
        let server = WireServer(name: "test", services: services, secret: Self.secret, limits: limits)
        let port = try server.start(port: 0)
        return (server, port)
    }

    func client(_ port: UInt16, secret: [UInt8] = WireTransportTests.secret) -> Grpc_Testing_TestService.Client {
        Grpc_Testing_TestService.Client(channel: WireChannel(host: "127.0.0.1", port: port, secret: secret, peerName: "tests"))
    }

    func testAllCallKindsOverSockets() async throws {
        let (server, port) = try startServer()
        defer { Task { await server.shutdown() } }
        let c = client(port)

        _ = try await c.emptyCall(Grpc_Testing_Empty())
        let unary = try await c.unaryCall(.with { $0.responseSize = 314_159; $0.payload = .with { $0.body = .init(repeating: 0, count: 271_828) } },
            options: CallOptions(metadata: Metadata([("x-user", "alice")])))
        XCTAssertEqual(unary.payload?.body.count, 314_159)
        XCTAssertEqual(unary.username, "alice", "metadata reaches the handler")

        let received = Received()
        try await c.streamingOutputCall(.with { $0.responseParameters = [31_415, 9, 2_653, 58_979].map { s in .with { $0.size = s } } }) {
            await received.add($0.payload?.body.count ?? -1)
        }
        let streamed = await received.values
        XCTAssertEqual(streamed, [31_415, 9, 2_653, 58_979])

        let aggregate = try await c.streamingInputCall { w in
            for size in [27_182, 8, 1_828, 45_904] { try await w.write(.with { $0.payload = .with { $0.body = .init(repeating: 0, count: size) } }) }
        }
        XCTAssertEqual(aggregate.aggregatedPayloadSize, 74_922)

        let duplex = Received()
        try await c.fullDuplexCall(requests: { w in
            for size in [31_415, 9, 2_653, 58_979] { try await w.write(.with { $0.responseParameters = [.with { $0.size = Int32(size) }] }) }
        }, onResponse: { await duplex.add($0.payload?.body.count ?? -1) })
        let duplexValues = await duplex.values
        XCTAssertEqual(duplexValues, [31_415, 9, 2_653, 58_979])
    }

    /// Response headers and trailers set by a handler reach the caller, on
    /// success and with an error status (interop `custom_metadata`).
    func testHandlerResponseHeadersAndTrailersReachTheCaller() async throws {
        let (server, port) = try startServer()
        defer { Task { await server.shutdown() } }
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: Self.secret, peerName: "tests")
        var sent = Metadata()
        sent.add("x-grpc-test-echo-initial", "initial-value")
        sent.add("x-grpc-test-echo-trailing-bin", binary: [0xAB, 0xAB, 0xAB])
        let method = Grpc_Testing_TestService.Method.unaryCall
        for status in [Int32(0), 13] {
            let request = Grpc_Testing_SimpleRequest.with {
                $0.responseSize = 10
                if status != 0 { $0.responseStatus = .with { $0.code = status; $0.message = "as asked" } }
            }
            let (headers, trailers, outcome) = try await channel.withCall(method, options: CallOptions(metadata: sent)) { call in
                try await call.send(request.serializedBytes())
                try await call.finishSending()
                var outcome = "ok"
                do { while try await call.receive() != nil {} } catch let e as RPCError { outcome = e.code.name }
                return (call.responseHeaders, call.responseTrailers, outcome)
            }
            XCTAssertEqual(outcome, status == 0 ? "OK".lowercased() : "INTERNAL")
            XCTAssertEqual(headers["x-grpc-test-echo-initial"], "initial-value")
            XCTAssertEqual(trailers.values("x-grpc-test-echo-trailing-bin"), [.binary([0xAB, 0xAB, 0xAB])])
        }
        // The unary path (what the gateway forwards with) carries the same metadata:
        // headers and trailers with the response, the trailers in the error otherwise.
        let ok = try await channel.unaryBytes(
            method, Grpc_Testing_SimpleRequest.with { $0.responseSize = 10 }.serializedBytes(), options: CallOptions(metadata: sent))
        XCTAssertEqual(try Grpc_Testing_SimpleResponse(serializedBytes: ok.message).payload?.body.count, 10)
        XCTAssertEqual(ok.headers["x-grpc-test-echo-initial"], "initial-value")
        XCTAssertEqual(ok.trailers.values("x-grpc-test-echo-trailing-bin"), [.binary([0xAB, 0xAB, 0xAB])])
        let failing = Grpc_Testing_SimpleRequest.with { $0.responseStatus = .with { $0.code = 13; $0.message = "as asked" } }
        do {
            _ = try await channel.unaryBytes(method, failing.serializedBytes(), options: CallOptions(metadata: sent))
            XCTFail("expected INTERNAL")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .internal)
            XCTAssertEqual(e.message, "as asked")
            XCTAssertEqual(e.metadata.values("x-grpc-test-echo-trailing-bin"), [.binary([0xAB, 0xAB, 0xAB])])
        }
    }

    func testManyConcurrentCallsShareOneConnection() async throws {
        let (server, port) = try startServer()
        defer { Task { await server.shutdown() } }
        let c = client(port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let r = try await c.unaryCall(.with { $0.responseSize = Int32(i) })
                    XCTAssertEqual(r.payload?.body.count, i)
                }
            }
            try await group.waitForAll()
        }
        XCTAssertEqual(server.connectionCount, 1)
    }

    func testStatusUnimplementedAndBadRequest() async throws {
        let (server, port) = try startServer()
        defer { Task { await server.shutdown() } }
        let c = client(port)
        do {
            _ = try await c.unaryCall(.with { $0.responseStatus = .with { $0.code = 5; $0.message = "no such table" } })
            XCTFail("expected NOT_FOUND")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .notFound)
            XCTAssertEqual(e.message, "no such table")
        }
        do {
            _ = try await Grpc_Testing_UnimplementedService.Client(channel: c.channel).unimplementedCall(Grpc_Testing_Empty())
            XCTFail("expected UNIMPLEMENTED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .unimplemented)
        }
        do {
            _ = try await c.channel.withCall(Grpc_Testing_TestService.Method.unaryCall, options: CallOptions()) { call in
                try await call.send([0x0F])
                try await call.finishSending()
                return try await call.receive()
            }
            XCTFail("expected INVALID_ARGUMENT")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .invalidArgument)
        }
    }

    func testOversizedMessagesAreRefusedWithoutLosingTheConnection() async throws {
        let (server, port) = try startServer()
        defer { Task { await server.shutdown() } }
        let c = client(port)
        let big = Grpc_Testing_Payload.with { $0.body = [UInt8](repeating: 1, count: 5 * 1024 * 1024) }
        do {
            _ = try await c.unaryCall(.with { $0.payload = big })
            XCTFail("expected RESOURCE_EXHAUSTED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .resourceExhausted, "\(e)")
        }
        do {
            _ = try await c.unaryCall(.with { $0.responseSize = 5 * 1024 * 1024 })
            XCTFail("expected RESOURCE_EXHAUSTED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .resourceExhausted, "\(e)")
        }
        XCTAssertEqual(server.connectionCount, 1, "the connection survives both")
        _ = try await c.emptyCall(Grpc_Testing_Empty())
    }

    /// The client holds requests to the server's announced frame size, not
    /// its own: a server with a smaller limit refuses a larger frame by
    /// closing the whole connection, so the client fails that call alone.
    func testRequestsAreHeldToTheServersSmallerLimit() async throws {
        var limits = WireLimits()
        limits.maxFrameSize = 64 * 1024
        let (server, port) = try startServer(limits: limits)
        defer { Task { await server.shutdown() } }
        let c = client(port)
        _ = try await c.emptyCall(Grpc_Testing_Empty())
        do {
            _ = try await c.unaryCall(.with { $0.payload = .with { $0.body = [UInt8](repeating: 1, count: 100 * 1024) } })
            XCTFail("expected RESOURCE_EXHAUSTED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .resourceExhausted, "\(e)")
        }
        XCTAssertEqual(server.connectionCount, 1, "the connection survives")
        _ = try await c.unaryCall(.with { $0.payload = .with { $0.body = [UInt8](repeating: 1, count: 60 * 1024) } })
    }

    func testDeadlineExpiresOnBothSides() async throws {
        let (server, port) = try startServer()
        defer { Task { await server.shutdown() } }
        let c = client(port)
        let start = ContinuousClock.now
        do {
            try await c.streamingOutputCall(.with { $0.responseParameters = [.with { $0.size = 1; $0.intervalUs = 10_000_000 }] },
                options: .timeout(.milliseconds(100))) { _ in }
            XCTFail("expected DEADLINE_EXCEEDED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .deadlineExceeded)
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
        // The connection is still good afterwards.
        _ = try await c.emptyCall(Grpc_Testing_Empty())
    }

    func testWrongSecretIsRefused() async throws {
        let (server, port) = try startServer()
        defer { Task { await server.shutdown() } }
        do {
            _ = try await client(port, secret: Array("wrong".utf8)).emptyCall(Grpc_Testing_Empty())
            XCTFail("expected UNAUTHENTICATED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .unauthenticated, e.message)
        }
    }

    func testPeerDownIsUnavailableThenReconnects() async throws {
        let (probe, port) = try startServer()
        await probe.shutdown()  // the port is now free and nothing listens
        let c = client(port)
        let start = ContinuousClock.now
        do {
            _ = try await c.emptyCall(Grpc_Testing_Empty())
            XCTFail("expected UNAVAILABLE")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .unavailable)
            XCTAssertTrue(e.message.contains("127.0.0.1:\(port)"), e.message)
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(1), "fails fast")
        let server = WireServer(name: "test", services: [InteropTestService()], secret: Self.secret)
        try server.start(port: port)
        defer { Task { await server.shutdown() } }
        var recovered = false
        for _ in 0..<50 where !recovered {
            do {
                _ = try await c.emptyCall(Grpc_Testing_Empty())
                recovered = true
            } catch { try await Task.sleep(for: .milliseconds(50)) }
        }
        XCTAssertTrue(recovered, "the channel reconnects after backoff")
    }

    func testGracefulDrainFinishesInFlightCalls() async throws {
        let (server, port) = try startServer()
        let c = client(port)
        _ = try await c.emptyCall(Grpc_Testing_Empty())
        async let slow = c.streamingOutputCall(.with { $0.responseParameters = [.with { $0.size = 3; $0.intervalUs = 300_000 }] }) { _ in }
        try await Task.sleep(for: .milliseconds(100))
        await server.shutdown()
        try await slow  // the in-flight call completed with OK
        do {
            _ = try await c.emptyCall(Grpc_Testing_Empty())
            XCTFail("expected UNAVAILABLE after shutdown")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .unavailable)
        }
    }

    /// The handler's `context.deadline` is the caller's deadline, carried as
    /// the time left (CALL_START's timeout, relative so that clocks need not
    /// agree) and converted back through `LoopClock`. The server counts from
    /// when the call arrived, so it sees the caller's instant pushed back by
    /// at most the call's trip to it, and never earlier (but for the timeout's
    /// whole-µs rounding). No deadline, none seen.
    func testHandlersSeeTheCallersDeadline() async throws {
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var deadlines: [ContinuousClock.Instant?] = []
        }
        struct Probe: RPCService {
            static let method = MethodDescriptor(service: "probe.Probe", method: "Deadline", kind: .unary)
            let seen: Seen
            var rpcHandlers: [RPCHandler] {
                [.unary(Self.method) { (_: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty in
                    seen.lock.withLock { seen.deadlines.append(context.deadline) }
                    return Grpc_Testing_Empty()
                }]
            }
        }
        let seen = Seen()
        let (server, port) = try startServer([Probe(seen: seen)])
        defer { Task { await server.shutdown() } }
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: Self.secret, peerName: "tests")
        for timeout in [Duration.seconds(30), .milliseconds(2_500), .seconds(86_400 * 365)] {
            let deadline = ContinuousClock.now + timeout
            let sent = ContinuousClock.now
            let _: Grpc_Testing_Empty = try await channel.unary(Probe.method, Grpc_Testing_Empty(), options: CallOptions(deadline: deadline))
            let took = ContinuousClock.now - sent
            let got = try XCTUnwrap(seen.lock.withLock { seen.deadlines.last ?? nil })
            XCTAssertGreaterThanOrEqual(got, deadline - .microseconds(1), "\(timeout)")  // the timeout is sent in whole µs
            XCTAssertLessThanOrEqual(got, deadline + took, "\(timeout)")
        }
        let _: Grpc_Testing_Empty = try await channel.unary(Probe.method, Grpc_Testing_Empty(), options: CallOptions())
        XCTAssertNil(seen.lock.withLock { seen.deadlines.last ?? nil })
    }

    /// A call is freed once it ends, with or without a deadline, however it
    /// ends: answered in time, ended by its deadline, or cancelled by the
    /// client; unary and streaming kinds alike. (Each deadline call
    /// once stayed alive forever: the call held its deadline timer, which held
    /// the call; the benchmark's server grew by 150 MB/s.)
    func testCallsAreFreedWhenTheyEnd() async throws {
        final class Contexts: @unchecked Sendable {
            private let lock = NSLock()
            private var refs: [Weak] = []
            struct Weak { weak var context: ServerContext? }
            func add(_ c: ServerContext) { lock.withLock { refs.append(Weak(context: c)) } }
            var alive: Int { lock.withLock { refs.filter { $0.context != nil }.count } }
            var aliveMethods: String { lock.withLock { refs.compactMap { $0.context.map { "\($0.method) \($0.deadline as Any)" } }.joined(separator: ",") } }
            var count: Int { lock.withLock { refs.count } }
        }
        struct Recording: RPCService {
            static let quick = MethodDescriptor(service: "probe.Probe", method: "Quick", kind: .unary)
            static let slow = MethodDescriptor(service: "probe.Probe", method: "Slow", kind: .unary)
            static let stream = MethodDescriptor(service: "probe.Probe", method: "Stream", kind: .serverStreaming)
            static let collect = MethodDescriptor(service: "probe.Probe", method: "Collect", kind: .clientStreaming)
            static let chat = MethodDescriptor(service: "probe.Probe", method: "Chat", kind: .bidirectionalStreaming)
            let contexts: Contexts
            var rpcHandlers: [RPCHandler] {
                [.unary(Self.quick) { (_: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty in
                    contexts.add(context)
                    return Grpc_Testing_Empty()
                },
                 .unary(Self.slow) { (_: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty in
                    contexts.add(context)
                    try await Task.sleep(for: .seconds(20))
                    return Grpc_Testing_Empty()
                },
                 // Two responses, then (if the request says so) waits for the end.
                 .serverStreaming(Self.stream) { (request: Grpc_Testing_Payload, out: RPCWriter<Grpc_Testing_Payload>, context: ServerContext) in
                    contexts.add(context)
                    try await out.write(request)
                    try await out.write(request)
                    if request.body == [1] { try await Task.sleep(for: .seconds(20)) }
                },
                 .clientStreaming(Self.collect) { (requests: RPCAsyncSequence<Grpc_Testing_Payload>, context: ServerContext) async throws -> Grpc_Testing_Payload in
                    contexts.add(context)
                    var all: [UInt8] = []
                    for try await r in requests { all += r.body }
                    return .with { $0.body = all }
                },
                 .bidirectionalStreaming(Self.chat) { (requests: RPCAsyncSequence<Grpc_Testing_Payload>, out: RPCWriter<Grpc_Testing_Payload>, context: ServerContext) in
                    contexts.add(context)
                    for try await r in requests { try await out.write(r) }
                }]
            }
        }
        let contexts = Contexts()
        let (server, port) = try startServer([Recording(contexts: contexts)])
        defer { Task { await server.shutdown() } }
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: Self.secret, peerName: "tests")
        for i in 0..<20 {
            let options: CallOptions = i % 2 == 0 ? .timeout(.seconds(30)) : CallOptions()
            let _: Grpc_Testing_Empty = try await channel.unary(Recording.quick, Grpc_Testing_Empty(), options: options)
        }
        for _ in 0..<5 {
            do {
                let _: Grpc_Testing_Empty = try await channel.unary(Recording.slow, Grpc_Testing_Empty(), options: .timeout(.milliseconds(50)))
                XCTFail("expected DEADLINE_EXCEEDED")
            } catch let e as RPCError {
                XCTAssertEqual(e.code, .deadlineExceeded)
            }
        }
        // Cancelled by the client while its 30 s deadline timer is armed on the server.
        for n in 26...28 {
            let call = Task { let _: Grpc_Testing_Empty = try await channel.unary(Recording.slow, Grpc_Testing_Empty(), options: .timeout(.seconds(30))) }
            for _ in 0..<200 where contexts.count < n { try await Task.sleep(for: .milliseconds(5)) }
            call.cancel()
            do { try await call.value; XCTFail("expected CANCELLED") } catch let e as RPCError { XCTAssertEqual(e.code, .cancelled) }
        }
        // Streaming kinds, each answered in full and ended by a deadline.
        for options in [CallOptions(), .timeout(.seconds(30))] {
            let got = Atomic<Int>(0)
            try await channel.serverStreaming(Recording.stream, Grpc_Testing_Payload.with { $0.body = [0] }, options: options) { (_: Grpc_Testing_Payload) in
                got.add(1, ordering: .relaxed)
            }
            XCTAssertEqual(got.load(ordering: .relaxed), 2)
            let sum: Grpc_Testing_Payload = try await channel.clientStreaming(Recording.collect, options: options) { out in
                try await out.write(Grpc_Testing_Payload.with { $0.body = [1] })
                try await out.write(Grpc_Testing_Payload.with { $0.body = [2] })
            }
            XCTAssertEqual(sum.body, [1, 2])
            try await channel.bidirectionalStreaming(Recording.chat, options: options, requests: { out in
                for i in 0..<3 { try await out.write(Grpc_Testing_Payload.with { $0.body = [UInt8(i)] }) }
            }, onResponse: { (_: Grpc_Testing_Payload) in })
        }
        do {
            try await channel.serverStreaming(Recording.stream, Grpc_Testing_Payload.with { $0.body = [1] }, options: .timeout(.milliseconds(50))) { (_: Grpc_Testing_Payload) in }
            XCTFail("expected DEADLINE_EXCEEDED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .deadlineExceeded)
        }
        do {
            try await channel.bidirectionalStreaming(Recording.chat, options: .timeout(.milliseconds(50)), requests: { out in
                try await out.write(Grpc_Testing_Payload.with { $0.body = [9] })
                try await Task.sleep(for: .seconds(20))
            }, onResponse: { (_: Grpc_Testing_Payload) in })
            XCTFail("expected DEADLINE_EXCEEDED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .deadlineExceeded)
        }
        XCTAssertEqual(contexts.count, 36)
        for _ in 0..<200 where contexts.alive > 0 { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(contexts.alive, 0, "calls still alive after they ended: \(contexts.aliveMethods)")
    }
}

extension WaitingService {
    /// A server with this service (and `others`), and a channel to it with
    /// `connections` connections (made on first use).
    static func serve(
        alongside others: [any RPCService] = [], connections: Int = 1
    ) throws -> (outcomes: Outcomes, server: WireServer, channel: WireChannel) {
        let outcomes = Outcomes()
        let server = WireServer(name: "probe", services: [WaitingService(outcomes: outcomes)] + others, secret: WireTransportTests.secret)
        let port = try server.start(port: 0)
        let channel = WireChannel(
            host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "tests", connections: connections)
        return (outcomes, server, channel)
    }
}


final class WireCancellationTests: XCTestCase {
    func testClientCancellationReachesTheHandler() async throws {
        let (outcomes, server, channel) = try WaitingService.serve()
        let call = Task { () -> StatusCode? in
            do {
                let _: Grpc_Testing_Empty = try await channel.unary(WaitingService.wait, Grpc_Testing_Empty(), options: CallOptions())
                return nil
            } catch let e as RPCError {
                return e.code
            } catch {
                return .unknown
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        call.cancel()
        let code = await call.value
        XCTAssertEqual(code, .cancelled)
        try await waitFor(outcomes, ["cancelled"])
        await server.shutdown()
    }

    /// Calls that arrive in one read start their handlers in one task, one
    /// after another: one that suspends must not hold up those behind it, and
    /// cancelling it must reach that handler alone.
    func testHandlersStartedTogetherAreIndependent() async throws {
        let (outcomes, server, channel) = try WaitingService.serve(alongside: [InteropTestService()])
        channel.close()  // calls go over a raw socket here, to send them in one write
        let p = try WireBadInputTests.RawPeer(port: channel.port)
        p.authenticate()
        func call(_ id: UInt32, _ method: MethodDescriptor) -> [Frame] {
            [Frame(.callStart, stream: id, message: Croupier_Wire_V1_CallStart.with { $0.method = method.path }),
             Frame(.message, stream: id, payload: []), Frame(.endStream, stream: id)]
        }
        let empty = Grpc_Testing_TestService.Method.emptyCall
        p.send((call(1, WaitingService.wait) + call(3, empty) + call(5, WaitingService.wait) + call(7, empty)).flatMap(\.encoded))
        var ended: [UInt32] = []
        _ = p.read { f in
            if f.type == .trailers { ended.append(f.streamID) }
            return ended.count == 2
        }
        XCTAssertEqual(ended, [3, 7], "the quick calls end while the waiting ones are suspended")
        p.send(Frame(.cancel, stream: 1))
        try await waitFor(outcomes, ["cancelled"])
        try await Task.sleep(for: .milliseconds(50))
        let afterFirst = await outcomes.values
        XCTAssertEqual(afterFirst, ["cancelled"], "cancelling call 1 leaves call 5 running")
        p.send(Frame(.cancel, stream: 5))
        try await waitFor(outcomes, ["cancelled", "cancelled"])
        p.send(call(9, empty).flatMap(\.encoded))
        let next = p.read { $0.type == .trailers }
        XCTAssertEqual(next.last?.streamID, 9)
        XCTAssertEqual(next.last.flatMap { try? Croupier_Wire_V1_Trailers(serializedBytes: $0.payload) }?.code, 0)
        await server.shutdown()
    }

    func testDeadlineCancelsTheServerHandler() async throws {
        let (outcomes, server, channel) = try WaitingService.serve()
        do {
            let _: Grpc_Testing_Empty = try await channel.unary(WaitingService.wait, Grpc_Testing_Empty(), options: .timeout(.milliseconds(100)))
            XCTFail("expected DEADLINE_EXCEEDED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .deadlineExceeded)
        }
        try await waitFor(outcomes, ["cancelled"])
        await server.shutdown()
    }
}
