import Foundation
import Synchronization
@testable import Wire
import XCTest

/// Per-stream flow control (docs/wire.md): credit comes back as the
/// application consumes messages, so streams far larger than the window
/// complete; a peer that sends far beyond its window loses the connection.
final class WireFlowControlTests: XCTestCase {
    func smallWindow() -> WireLimits {
        var limits = WireLimits()
        limits.initialWindow = 4_096
        return limits
    }

    func testClientStreamLargerThanTheServersWindowCompletes() async throws {
        let server = WireServer(name: "test", services: [InteropTestService()], secret: WireTransportTests.secret, limits: smallWindow())
        let port = try server.start(port: 0)
        let client = Grpc_Testing_TestService.Client(
            channel: WireChannel(host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "tests"))
        // 50 KB through a 4 KB window: without WINDOW_UPDATEs the sender would stall until the deadline.
        let response = try await client.streamingInputCall(options: .timeout(.seconds(10))) { w in
            for _ in 0..<50 { try await w.write(.with { $0.payload = .with { $0.body = .init(repeating: 1, count: 1_000) } }) }
        }
        XCTAssertEqual(response.aggregatedPayloadSize, 50_000)
        await server.shutdown()
    }

    func testServerStreamLargerThanTheClientsWindowCompletes() async throws {
        let server = WireServer(name: "test", services: [InteropTestService()], secret: WireTransportTests.secret)
        let port = try server.start(port: 0)
        let client = Grpc_Testing_TestService.Client(channel: WireChannel(
            host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "tests", limits: smallWindow()))
        let received = Received()
        try await client.streamingOutputCall(
            .with { $0.responseParameters = Array(repeating: .with { $0.size = 1_000 }, count: 50) },
            options: .timeout(.seconds(10))
        ) { await received.add($0.payload?.body.count ?? 0) }
        let sizes = await received.values
        XCTAssertEqual(sizes.count, 50)
        await server.shutdown()
    }

    /// A sender stalled for credit past its deadline fails with DEADLINE_EXCEEDED:
    /// from `send` when the client's timer fires first, or, when the server's
    /// deadline TRAILERS arrive first (the stalled send returns, moot), from
    /// `receive`.
    /// A peer may send WINDOW_UPDATEs without end: the window stops growing
    /// at 2^31-1 instead of overflowing, and sending still takes credit from it.
    func testEndlessCreditSaturatesTheWindow() async throws {
        let window = SendWindow(initial: 1024)
        for _ in 0..<10_000 { window.credit(Int(UInt32.max)) }
        try await window.acquire(SendWindow.largestWindow)  // spends it all (the window is positive, so this goes)
        let done = Atomic<Bool>(false)
        let stalled = Task {
            try await window.acquire(1)
            done.store(true, ordering: .relaxed)
        }
        try await Task.sleep(for: .milliseconds(20))
        XCTAssertFalse(done.load(ordering: .relaxed), "the window held more than 2^31-1 bytes of credit")
        window.credit(1)
        try await stalled.value  // only once the window is positive again
    }

    func testSenderStalledOnCreditGetsDeadlineExceeded() async throws {
        let server = WireServer(name: "test", services: [NonReader()], secret: WireTransportTests.secret, limits: smallWindow())
        let port = try server.start(port: 0)
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "tests")
        do {
            try await channel.withCall(NonReader.hold, options: .timeout(.milliseconds(200))) { call in
                for _ in 0..<10 { try await call.send(.init(repeating: 0, count: 1_000)) }  // 10 KB into a 4 KB window
                _ = try await call.receive()
            }
            XCTFail("expected DEADLINE_EXCEEDED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .deadlineExceeded, e.message)
        }
        await server.shutdown(timeout: .seconds(1))
    }

    /// A handler that never reads its requests, so nothing returns credit.
    struct NonReader: RPCService {
        static let hold = MethodDescriptor(service: "probe.Probe", method: "Hold", kind: .bidirectionalStreaming)
        var rpcHandlers: [RPCHandler] { [RPCHandler(method: Self.hold) { _ in try await Task.sleep(for: .seconds(20)) }] }
    }

    /// A peer may overshoot its window by one message (it may start one
    /// while any credit is left), so the bound is the window plus the largest
    /// message: here 4 KB + 16 KB, and 100 KB is far beyond it.
    func testPeerSendingFarBeyondItsWindowIsDisconnected() async throws {
        var limits = smallWindow()
        limits.maxFrameSize = 16_384
        let server = WireServer(name: "test", services: [NonReader()], secret: WireTransportTests.secret, limits: limits)
        let port = try server.start(port: 0)
        let peer = try WireBadInputTests.RawPeer(port: port)
        peer.authenticate()
        var frames = Frame(.callStart, stream: 1, message: Croupier_Wire_V1_CallStart.with { $0.method = NonReader.hold.path }).encoded
        for _ in 0..<10 { frames += Frame(.message, stream: 1, payload: .init(repeating: 0, count: 10_000)).encoded }
        peer.send(frames)  // 100 KB against a 4 KB window
        let goAway = peer.readUntilClosed().last { $0.type == .goAway }.flatMap { try? Croupier_Wire_V1_GoAway(serializedBytes: $0.payload) }
        XCTAssertEqual(goAway?.reason, .flowControl)
        await server.shutdown(timeout: .seconds(1))
    }

    /// The lawful overshoot: one message far larger than the window, sent
    /// with credit left, is taken (a bound of twice the window closed the
    /// connection for any message over about 2 MiB on a 1 MiB window).
    func testOneMessageLargerThanTwiceTheWindowIsAccepted() async throws {
        let server = WireServer(name: "test", services: [InteropTestService()], secret: WireTransportTests.secret, limits: smallWindow())
        let port = try server.start(port: 0)
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "test", limits: smallWindow())
        let client = Grpc_Testing_TestService.Client(channel: channel)
        // 300 KB each way: far above 2 x 4 KB + 64 KB, under the 4 MiB message limit.
        let big = Grpc_Testing_StreamingOutputCallRequest.with {
            $0.payload = .with { $0.body = [UInt8](repeating: 7, count: 300_000) }
            $0.responseParameters = [.with { $0.size = 300_000 }]
        }
        let received = Mutex<[Int]>([])
        try await client.fullDuplexCall(requests: { writer in
            try await writer.write(big)
            try await writer.write(big)
        }, onResponse: { reply in received.withLock { $0.append(reply.payload?.body.count ?? -1) } })
        XCTAssertEqual(received.withLock { $0 }, [300_000, 300_000])
        channel.close()
        await server.shutdown(timeout: .seconds(1))
    }
}
