import Foundation
import Glibc
@testable import Wire
import XCTest

/// Malformed input over real sockets: each case closes *that* connection with
/// a GOAWAY naming the reason, and the server keeps serving everyone else.
final class WireBadInputTests: XCTestCase {
    var server: WireServer!
    var port: UInt16 = 0

    override func setUp() async throws {
        var limits = WireLimits()
        limits.handshakeTimeoutMillis = 300
        limits.maxFrameSize = 64 * 1024
        server = WireServer(name: "test", services: [InteropTestService()], secret: WireTransportTests.secret, limits: limits)
        port = try server.start(port: 0)
    }

    override func tearDown() async throws {
        // Whatever the bad peer did, a well-behaved client still gets served.
        let c = Grpc_Testing_TestService.Client(
            channel: WireChannel(host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "after"))
        _ = try await c.unaryCall(.with { $0.responseSize = 3 })
        await server.shutdown()
    }

    /// A blocking socket that speaks raw bytes.
    final class RawPeer {
        let fd: Int32
        var decoder = FrameDecoder(maxFrameSize: 1 << 30)
        var serverNonce: [UInt8] = []

        init(port: UInt16) throws {
            fd = try Posix.connectBlocking(host: "127.0.0.1", port: port)
            var tv = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        func send(_ bytes: [UInt8]) {
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        func send(_ frames: Frame...) { send(frames.flatMap(\.encoded)) }

        /// Frames until the server closes (or 3 s pass).
        func readUntilClosed() -> [Frame] { read { _ in false } }

        /// Reads frames until one satisfies `done`.
        func read(until done: (Frame) -> Bool) -> [Frame] {
            var frames: [Frame] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return frames }
                buffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                while let f = try? decoder.next() {
                    frames.append(f)
                    if done(f) { return frames }
                }
            }
        }

        /// Reads until the AUTH_CHALLENGE arrives.
        func readChallenge() {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while serverNonce.isEmpty {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                buffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                while let f = try? decoder.next() {
                    if f.type == .authChallenge { serverNonce = (try? Croupier_Wire_V1_AuthChallenge(serializedBytes: f.payload))?.serverNonce ?? [] }
                }
            }
        }

        /// Preface, SETTINGS and a correct AUTH_RESPONSE.
        func authenticate() {
            send(WirePreface.bytes + Frame(.settings, message: WireLimits().settings).encoded)
            readChallenge()
            let nonce = PeerAuthentication.nonce()
            send(Frame(.authResponse, message: Croupier_Wire_V1_AuthResponse.with {
                $0.clientNonce = nonce
                $0.mac = PeerAuthentication.mac(secret: WireTransportTests.secret, label: PeerAuthentication.clientLabel, serverNonce, nonce)
            }))
        }
    }

    func goAway(_ frames: [Frame], file: StaticString = #filePath, line: UInt = #line) -> Croupier_Wire_V1_GoAway? {
        guard let f = frames.last(where: { $0.type == .goAway }) else {
            XCTFail("no GOAWAY in \(frames.map(\.type))", file: file, line: line)
            return nil
        }
        return try? Croupier_Wire_V1_GoAway(serializedBytes: f.payload)
    }

    func testWrongPreface() throws {
        let p = try RawPeer(port: port)
        p.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let g = goAway(p.readUntilClosed())
        XCTAssertEqual(g?.reason, .protocolError)
        XCTAssertTrue(g?.detail.contains("bad preface") ?? false, g?.detail ?? "")
    }

    func testCallBeforeAuthentication() throws {
        let p = try RawPeer(port: port)
        p.send(WirePreface.bytes + Frame(.callStart, stream: 1, message: Croupier_Wire_V1_CallStart.with { $0.method = "/grpc.testing.TestService/EmptyCall" }).encoded)
        let g = goAway(p.readUntilClosed())
        XCTAssertEqual(g?.reason, .protocolError)
        XCTAssertTrue(g?.detail.contains("before authentication") ?? false, g?.detail ?? "")
    }

    func testBadAuthenticationMAC() throws {
        let p = try RawPeer(port: port)
        p.send(WirePreface.bytes)
        p.readChallenge()
        p.send(Frame(.authResponse, message: Croupier_Wire_V1_AuthResponse.with {
            $0.clientNonce = PeerAuthentication.nonce()
            $0.mac = [UInt8](repeating: 0, count: 32)
        }))
        XCTAssertEqual(goAway(p.readUntilClosed())?.reason, .unauthenticated)
    }

    func testHandshakeTimeout() throws {
        let p = try RawPeer(port: port)
        p.send(WirePreface.bytes)  // then nothing
        XCTAssertEqual(goAway(p.readUntilClosed())?.reason, .timeout)
    }

    func testUnknownFrameType() throws {
        let p = try RawPeer(port: port)
        p.authenticate()
        p.send([0, 0, 0, 0, 0x7F, 0, 0, 0, 0, 0])
        let g = goAway(p.readUntilClosed())
        XCTAssertEqual(g?.reason, .protocolError)
        XCTAssertTrue(g?.detail.contains("unknown frame type") ?? false, g?.detail ?? "")
    }

    func testOversizedLength() throws {
        let p = try RawPeer(port: port)
        p.authenticate()
        p.send([0xFF, 0xFF, 0xFF, 0xFF, 0x11, 0, 0, 0, 0, 1])
        XCTAssertEqual(goAway(p.readUntilClosed())?.reason, .frameTooLarge)
    }

    func testTruncatedFrameThenHangUp() throws {
        let p = try RawPeer(port: port)
        p.authenticate()
        p.send([0, 0, 0, 100, 0x11, 0, 0, 0, 0, 1, 1, 2, 3])  // promises 100 bytes, sends 3
        shutdown(p.fd, Int32(SHUT_WR))
        _ = p.readUntilClosed()  // the server closes; tearDown checks it still serves
    }

    func testZeroAndReusedStreamIDs() throws {
        let start = { (id: UInt32) in Frame(.callStart, stream: id, message: Croupier_Wire_V1_CallStart.with { $0.method = "/grpc.testing.TestService/EmptyCall" }) }
        let zero = try RawPeer(port: port)
        zero.authenticate()
        zero.send(start(0))
        XCTAssertEqual(goAway(zero.readUntilClosed())?.reason, .protocolError)

        let reused = try RawPeer(port: port)
        reused.authenticate()
        reused.send(start(5), Frame(.message, stream: 5), Frame(.endStream, stream: 5))
        let served = reused.read { $0.type == .trailers && $0.streamID == 5 }
        XCTAssertEqual(served.last?.type, .trailers, "stream 5 was served")
        reused.send(start(3))
        let g = goAway(reused.readUntilClosed())
        XCTAssertEqual(g?.reason, .protocolError)
        XCTAssertTrue(g?.detail.contains("reuses stream id 3") ?? false, g?.detail ?? "")
    }

    /// A unary call whose request never completes (no END_STREAM) has no
    /// handler running yet; its deadline still ends it, and a late END_STREAM
    /// changes nothing.
    func testDeadlineEndsAUnaryCallThatNeverHalfCloses() throws {
        let p = try RawPeer(port: port)
        p.authenticate()
        p.send(
            Frame(.callStart, stream: 1, message: Croupier_Wire_V1_CallStart.with {
                $0.method = Grpc_Testing_TestService.Method.unaryCall.path
                $0.timeoutMicros = 100_000
            }),
            Frame(.message, stream: 1, payload: Grpc_Testing_SimpleRequest().serializedBytes()))
        let frames = p.read { $0.type == .trailers }
        let trailers = frames.last.flatMap { try? Croupier_Wire_V1_Trailers(serializedBytes: $0.payload) }
        XCTAssertEqual(frames.last?.streamID, 1)
        XCTAssertEqual(trailers?.code, Int32(StatusCode.deadlineExceeded.rawValue))
        // The stream is over: END_STREAM now is ignored, and the connection still serves calls.
        p.send(
            Frame(.endStream, stream: 1),
            Frame(.callStart, stream: 3, message: Croupier_Wire_V1_CallStart.with { $0.method = Grpc_Testing_TestService.Method.emptyCall.path }),
            Frame(.message, stream: 3, payload: []), Frame(.endStream, stream: 3))
        let next = p.read { $0.type == .trailers }
        XCTAssertEqual(next.last?.streamID, 3)
        XCTAssertEqual(next.last.flatMap { try? Croupier_Wire_V1_Trailers(serializedBytes: $0.payload) }?.code, 0)
        XCTAssertTrue(next.contains { $0.type == .message && $0.streamID == 3 })
    }

    /// Any timeout a peer can send is served: the largest ones count as about
    /// 31 years (docs/wire.md), and no deadline arithmetic overflows.
    func testHugeTimeoutsAreServedNormally() throws {
        let p = try RawPeer(port: port)
        p.authenticate()
        let timeouts: [UInt64] = [.max, .max / 1000, 1_000_000_000_000_001, 1]
        for (i, timeout) in timeouts.enumerated() {
            let id = UInt32(2 * i + 1)
            p.send(
                Frame(.callStart, stream: id, message: Croupier_Wire_V1_CallStart.with {
                    $0.method = Grpc_Testing_TestService.Method.emptyCall.path
                    $0.timeoutMicros = timeout
                }),
                Frame(.message, stream: id, payload: []), Frame(.endStream, stream: id))
            let frames = p.read { $0.type == .trailers }
            let code = frames.last.flatMap { try? Croupier_Wire_V1_Trailers(serializedBytes: $0.payload) }?.code
            XCTAssertEqual(frames.last?.streamID, id)
            // 1 µs may pass before the handler runs: then DEADLINE_EXCEEDED is the right answer.
            XCTAssertTrue(code == 0 || (timeout == 1 && code == Int32(StatusCode.deadlineExceeded.rawValue)), "timeout \(timeout): \(String(describing: code))")
        }
    }

    func testFrameForUnknownStream() throws {
        let p = try RawPeer(port: port)
        p.authenticate()
        p.send(Frame(.message, stream: 9, payload: [1]))
        XCTAssertEqual(goAway(p.readUntilClosed())?.reason, .protocolError)
    }

    func testPingFlood() throws {
        let p = try RawPeer(port: port)
        p.authenticate()
        p.send((0..<150).flatMap { _ in Frame(.ping, payload: [UInt8](repeating: 7, count: 8)).encoded })
        let frames = p.readUntilClosed()
        XCTAssertEqual(frames.filter { $0.type == .pong }.count, 100, "answers up to the limit")
        XCTAssertEqual(goAway(frames)?.reason, .enhanceYourCalm)
    }

    /// Thousands of random byte strings, raw and after a valid handshake:
    /// the server never crashes or stalls.
    func testRandomBytesNeverHurtTheServer() throws {
        var rng = MutationFuzzTests.Rng(state: 0xC0FF_EE00_1234_5678)
        let inputs = 2_000
        for i in 0..<inputs {
            let p = try RawPeer(port: port)
            let n = rng.below(200)
            var junk = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if i % 2 == 1 {
                p.authenticate()
            } else if i % 4 == 0 {
                junk = WirePreface.bytes + junk
            }
            p.send(junk)
            shutdown(p.fd, Int32(SHUT_WR))
            _ = p.readUntilClosed()
        }
    }
}

final class WireLimitTests: XCTestCase {
    func testStreamLimitRefusesTheExtraCall() async throws {
        var limits = WireLimits()
        limits.maxConcurrentStreams = 2
        let outcomes = WaitingService.Outcomes()
        let server = WireServer(name: "probe", services: [WaitingService(outcomes: outcomes)], secret: WireTransportTests.secret, limits: limits)
        let port = try server.start(port: 0)
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "tests")
        let waiting = (0..<2).map { _ in
            Task { () -> Void in
                let _: Grpc_Testing_Empty = try await channel.unary(WaitingService.wait, Grpc_Testing_Empty(), options: .timeout(.seconds(2)))
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        do {
            let _: Grpc_Testing_Empty = try await channel.unary(WaitingService.wait, Grpc_Testing_Empty(), options: CallOptions())
            XCTFail("expected RESOURCE_EXHAUSTED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .resourceExhausted, e.message)
        }
        for t in waiting { t.cancel() }
        await server.shutdown(timeout: .seconds(3))
    }

    func testIdleConnectionIsClosedWithTimeout() throws {
        var limits = WireLimits()
        limits.idleTimeoutMillis = 300
        let server = WireServer(name: "test", services: [InteropTestService()], secret: WireTransportTests.secret, limits: limits)
        let port = try server.start(port: 0)
        let peer = try WireBadInputTests.RawPeer(port: port)
        peer.authenticate()
        let frames = peer.readUntilClosed()
        let goAway = frames.last { $0.type == .goAway }.flatMap { try? Croupier_Wire_V1_GoAway(serializedBytes: $0.payload) }
        XCTAssertEqual(goAway?.reason, .timeout)
        XCTAssertTrue(goAway?.detail.contains("idle") ?? false, goAway?.detail ?? "")
    }
}
