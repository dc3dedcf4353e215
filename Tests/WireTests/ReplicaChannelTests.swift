import Foundation
import Synchronization
import TestSupport
@testable import Wire
import XCTest

/// A service served by several replicas: calls spread over the healthy ones,
/// a replica that stops is ejected, and a call moves to another replica only
/// when it provably reached no handler.
final class ReplicaChannelTests: XCTestCase {
    static let who = MethodDescriptor(service: "probe.Who", method: "Name", kind: .unary)
    static let hold = MethodDescriptor(service: "probe.Who", method: "Hold", kind: .unary)

    /// Answers with its replica's name and counts the calls its handlers saw.
    final class Named: RPCService, @unchecked Sendable {
        let name: String
        let handled = Atomic<Int>(0)
        init(_ name: String) { self.name = name }

        var rpcHandlers: [RPCHandler] {
            [
                .unary(ReplicaChannelTests.who) { [self] (_: Grpc_Testing_Empty, _: ServerContext) async throws -> Grpc_Testing_Payload in
                    handled.add(1, ordering: .relaxed)
                    return .with { $0.body = Array(name.utf8) }
                },
                .unary(ReplicaChannelTests.hold) { [self] (_: Grpc_Testing_Empty, _: ServerContext) async throws -> Grpc_Testing_Payload in
                    handled.add(1, ordering: .relaxed)
                    try await Task.sleep(for: .seconds(20))
                    return .with { $0.body = Array(name.utf8) }
                },
            ]
        }
    }

    final class Cluster: Sendable {
        let services: [Named]
        let servers: [WireServer]
        let ports: [UInt16]
        let channel: ReplicaChannel

        init(_ n: Int) throws {
            services = (0..<n).map { Named("r\($0)") }
            servers = services.map { WireServer(name: $0.name, services: [$0], secret: WireTransportTests.secret) }
            ports = try servers.map { try $0.start(port: 0) }
            channel = ReplicaChannel(
                name: "probe", addresses: ports.map { ("127.0.0.1", $0) }, secret: WireTransportTests.secret, peerName: "tests",
                healthInterval: .milliseconds(100))
        }

        func stop() async {
            channel.close()
            for s in servers { await s.shutdown(timeout: .milliseconds(200)) }
        }
    }

    private static func name(_ channel: ReplicaChannel) async throws -> String {
        let p: Grpc_Testing_Payload = try await channel.unary(Self.who, Grpc_Testing_Empty(), options: CallOptions())
        return String(decoding: p.body, as: UTF8.self)
    }

    /// Whether a blocking connect to the local `port` is refused.
    private static func refuses(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } != 0
    }

    private static func holdCall(_ channel: any RPCChannel) async throws -> UnaryResponse {
        try await channel.unaryBytes(hold, Grpc_Testing_Empty().serializedBytes(), options: CallOptions())
    }

    /// `startUnary`, the gateway's path, as an async call.
    private static func startedName(_ channel: ReplicaChannel) async throws -> String {
        let r = try await withCheckedThrowingContinuation { (c: CheckedContinuation<UnaryResponse, Error>) in
            channel.startUnary(Self.who, Grpc_Testing_Empty().serializedBytes(), options: CallOptions()) { c.resume(with: $0.mapError { $0 }) }
        }
        return String(decoding: try Grpc_Testing_Payload(serializedBytes: r.message).body, as: UTF8.self)
    }

    func testCallsSpreadOverEveryHealthyReplica() async throws {
        let c = try Cluster(3)
        var counts: [String: Int] = [:]
        for k in 0..<300 { counts[k % 2 == 0 ? try await Self.name(c.channel) : try await Self.startedName(c.channel), default: 0] += 1 }
        XCTAssertEqual(Set(counts.keys), ["r0", "r1", "r2"])
        XCTAssertTrue(counts.values.allSatisfy { $0 >= 50 }, "\(counts)")
        await c.stop()
    }

    func testAStoppedReplicaIsEjectedAndNoCallFails() async throws {
        let c = try Cluster(3)
        for _ in 0..<30 { _ = try await Self.name(c.channel) }
        await c.servers[1].shutdown(timeout: .milliseconds(200))
        let before = c.services[1].handled.load(ordering: .relaxed)
        // Calls right after the stop: each either lands on a live replica or
        // is refused unsent and moves on. None fails.
        for k in 0..<200 {
            let n = k % 2 == 0 ? try await Self.name(c.channel) : try await Self.startedName(c.channel)
            XCTAssertNotEqual(n, "r1")
        }
        XCTAssertEqual(c.services[1].handled.load(ordering: .relaxed), before)
        try await eventually("the stopped replica to be ejected") {
            c.channel.status.map(\.healthy) == [true, false, true]
        }
        await c.stop()
    }

    func testEveryReplicaDownFailsWithUnavailableAndOneBackIsUsedAgain() async throws {
        let service = Named("only")
        let server = WireServer(name: "only", services: [service], secret: WireTransportTests.secret)
        let port = try server.start(port: 0)
        let channel = ReplicaChannel(
            name: "probe", addresses: [("127.0.0.1", port)], secret: WireTransportTests.secret, peerName: "tests",
            healthInterval: .milliseconds(100))
        let first = try await Self.name(channel)
        XCTAssertEqual(first, "only")
        await server.shutdown(timeout: .milliseconds(200))
        let (code, _) = await statusOf { try await ReplicaChannelTests.name(channel) }
        XCTAssertEqual(code, .unavailable)
        let again = WireServer(name: "only", services: [service], secret: WireTransportTests.secret)
        _ = try again.start(port: port)
        try await eventually("calls to succeed again") { (try? await ReplicaChannelTests.name(channel)) == "only" }
        channel.close()
        await again.shutdown(timeout: .milliseconds(200))
    }

    /// A call a replica's handler had started is never sent again, even
    /// when that replica then goes away: the caller hears UNAVAILABLE and
    /// no other replica saw the call.
    func testACallThatReachedAHandlerIsNeverRepeated() async throws {
        let c = try Cluster(2)
        for _ in 0..<10 { _ = try await Self.name(c.channel) }
        let counts = c.services.map { $0.handled.load(ordering: .relaxed) }
        let channel = c.channel
        let call = Task { try await ReplicaChannelTests.holdCall(channel) }
        var holder = -1
        try await eventually("a handler to hold the call") {
            holder = c.services.indices.first { c.services[$0].handled.load(ordering: .relaxed) > counts[$0] } ?? -1
            return holder >= 0
        }
        await c.servers[holder].shutdown(timeout: .milliseconds(100))  // the held call is cut off
        let result = await call.result
        guard case .failure(let e as RPCError) = result else { return XCTFail("the cut-off call should fail, got \(result)") }
        XCTAssertFalse(e.notProcessed)
        let other = 1 - holder
        XCTAssertEqual(c.services[other].handled.load(ordering: .relaxed), counts[other], "the call ran twice")
        await c.stop()
    }

    /// A draining server refuses new calls before dispatch and says so; the
    /// refusal is retried on another replica.
    func testARefusalFromADrainingReplicaMovesToAnother() async throws {
        let c = try Cluster(2)
        // Connections to both replicas, and one call held open on r0 so it drains slowly.
        var seen = Set<String>()
        for _ in 0..<40 where seen.count < 2 { seen.insert(try await Self.name(c.channel)) }
        XCTAssertEqual(seen.count, 2)
        let direct = WireChannel(host: "127.0.0.1", port: c.ports[0], secret: WireTransportTests.secret, peerName: "holder")
        let held = Task { try? await ReplicaChannelTests.holdCall(direct) }
        try await eventually("the held call") { c.services[0].handled.load(ordering: .relaxed) > 0 }
        let drain = Task { await c.servers[0].shutdown(timeout: .seconds(5)) }
        try await eventually("r0 to stop listening") { Self.refuses(c.ports[0]) }
        // Every call succeeds while r0 drains (calls that meet its GOAWAY or
        // its closed port go to r1), and once the GOAWAY is in, r1 takes all.
        var names: [String] = []
        for k in 0..<200 { names.append(k % 2 == 0 ? try await Self.name(c.channel) : try await Self.startedName(c.channel)) }
        XCTAssertEqual(Set(names.suffix(100)), ["r1"], "a draining replica took new calls")
        held.cancel()
        direct.close()
        await drain.value
        await c.stop()
    }

    /// The gateway's stream holds a call's handle and the call's completion
    /// holds the stream: once the call ended, the completion must be gone,
    /// or every stream would outlive its call.
    func testAFinishedCallLetsGoOfItsCompletion() async throws {
        let c = try Cluster(2)
        final class Caller: Sendable {}
        weak var released: Caller?
        var handle: UnaryCallHandle?
        do {
            let caller = Caller()
            released = caller
            handle = await withCheckedContinuation { (done: CheckedContinuation<UnaryCallHandle, Never>) in
                let box = Mutex<UnaryCallHandle?>(nil)
                let h = c.channel.startUnary(Self.who, Grpc_Testing_Empty().serializedBytes(), options: CallOptions()) { _ in
                    _ = caller
                    while box.withLock({ $0 }) == nil { usleep(100) }
                    done.resume(returning: box.withLock { $0! })
                }
                box.withLock { $0 = h }
            }
        }
        XCTAssertNotNil(handle, "the caller still holds the handle, as a gateway stream does")
        // The completion may still be returning on the loop thread when the caller resumes.
        try await eventually("the finished call to let go of its completion (and so of its caller)") { released == nil }
        await c.stop()
    }

    func testOnlyUnsentOrRefusedUnavailableCallsAreRetryable() {
        XCTAssertTrue(ReplicaChannel.retryable(RPCError(.unavailable, "x").markedNotProcessed))
        XCTAssertTrue(ReplicaChannel.retryable(RPCError(.resourceExhausted, "x").markedNotProcessed))
        XCTAssertFalse(ReplicaChannel.retryable(RPCError(.unavailable, "connection closed")))
        XCTAssertFalse(ReplicaChannel.retryable(RPCError(.unimplemented, "x").markedNotProcessed))
        XCTAssertFalse(ReplicaChannel.retryable(RPCError(.deadlineExceeded, "x").markedNotProcessed))
    }
}
