import TestSupport
@testable import Wire
import XCTest

/// A channel with several connections sends each call on the ready
/// connection with the fewest calls in flight.
final class ChannelBalancingTests: XCTestCase {
    static let peer = MethodDescriptor(service: "probe.Probe", method: "Peer", kind: .unary)

    /// Answers with the caller's address as the server sees it: which connection carried the call.
    struct PeerService: RPCService {
        var rpcHandlers: [RPCHandler] {
            [.unary(ChannelBalancingTests.peer) { (_: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Payload in
                Grpc_Testing_Payload.with { $0.body = Array(context.peer.utf8) }
            }]
        }
    }

    /// Distinct connections (by the server's view of the caller's address)
    /// that `calls` sequential calls went out on.
    private func peers(_ channel: WireChannel, calls: Int) async throws -> Set<String> {
        var seen = Set<String>()
        for _ in 0..<calls {
            let p: Grpc_Testing_Payload = try await channel.unary(Self.peer, Grpc_Testing_Empty(), options: CallOptions())
            seen.insert(String(decoding: p.body, as: UTF8.self))
            try await Task.sleep(for: .milliseconds(5))
        }
        return seen
    }

    /// Both connections of a channel are lost when the server goes away; once
    /// it is back, calls succeed again and spread over two new connections.
    func testBothConnectionsComeBackAfterTheServerRestarts() async throws {
        let first = WireServer(name: "probe", services: [PeerService()], secret: WireTransportTests.secret)
        let port = try first.start(port: 0)
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "tests", connections: 2)
        defer { channel.close() }
        var before = Set<String>()
        for _ in 0..<100 where before.count < 2 { before.formUnion(try await peers(channel, calls: 4)) }
        XCTAssertEqual(before.count, 2)
        await first.shutdown()

        let second = WireServer(name: "probe", services: [PeerService()], secret: WireTransportTests.secret)
        _ = try second.start(port: port)
        var after = Set<String>()
        for _ in 0..<100 where after.count < 2 {
            if let seen = try? await peers(channel, calls: 4) { after.formUnion(seen) } else { try await Task.sleep(for: .milliseconds(50)) }
        }
        XCTAssertEqual(after.count, 2, "the channel did not bring both connections back")
        await second.shutdown()
    }

    func testCallsAvoidTheConnectionBusyWithAWaitingCall() async throws {
        let (outcomes, server, channel) = try WaitingService.serve(alongside: [PeerService()], connections: 2)
        // Both connections come up; with nothing in flight, idle calls alternate between them.
        var seen = Set<String>()
        for _ in 0..<100 where seen.count < 2 { seen.formUnion(try await peers(channel, calls: 4)) }
        XCTAssertEqual(seen.count, 2, "the channel never used its second connection")

        // One connection now carries a call that waits; every quick call takes the other.
        let waiting = Task {
            let _: Grpc_Testing_Empty = try await channel.unary(WaitingService.wait, Grpc_Testing_Empty(), options: CallOptions())
        }
        try await Task.sleep(for: .milliseconds(100))
        let quick = try await peers(channel, calls: 20)
        XCTAssertEqual(quick.count, 1, "quick calls went out on the busy connection too: \(quick)")
        XCTAssertTrue(quick.isSubset(of: seen))

        waiting.cancel()
        try await waitFor(outcomes, ["cancelled"])
        channel.close()
        await server.shutdown()
    }
}
