import Foundation
import Synchronization
import TestSupport
@testable import Wire
import XCTest

/// `startUnary`, the unary call without a task, over real sockets: the
/// outcome arrives once, on the channel's loop; deadlines and `cancel` end
/// the call on both sides; a channel that cannot connect answers UNAVAILABLE.
final class StartUnaryTests: XCTestCase {
    typealias Outcome = Result<UnaryResponse, RPCError>

    /// Starts a call and waits for its completion, noting whether it ran on the loop.
    func outcome(
        _ channel: WireChannel, _ method: MethodDescriptor, _ request: [UInt8], options: CallOptions = CallOptions(),
        afterStart: @escaping @Sendable (UnaryCallHandle) async throws -> Void = { _ in }
    ) async throws -> (Outcome, onLoop: Bool) {
        let calls = Mutex(0)
        let result: (Outcome, Bool) = try await withCheckedThrowingContinuation { c in
            let handle = channel.startUnary(method, request, options: options) { outcome in
                calls.withLock { $0 += 1 }
                c.resume(returning: (outcome, channel.loop.inLoop))
            }
            Task {
                do { try await afterStart(handle) } catch { XCTFail("\(error)") }
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        XCTAssertEqual(calls.withLock { $0 }, 1, "the completion runs exactly once")
        return result
    }

    func testResponseArrivesOnTheChannelsLoop() async throws {
        let server = WireServer(name: "test", services: [InteropTestService()], secret: WireTransportTests.secret)
        let port = try server.start(port: 0)
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "tests")
        // The first call connects (through a task); later ones find the connection ready.
        for _ in 0..<2 {
            let (outcome, onLoop) = try await outcome(
                channel, Grpc_Testing_TestService.Method.unaryCall,
                Grpc_Testing_SimpleRequest.with { $0.responseSize = 5 }.serializedBytes())
            let response = try Grpc_Testing_SimpleResponse(serializedBytes: try outcome.get().message)
            XCTAssertEqual(response.payload?.body.count, 5)
            XCTAssertTrue(onLoop)
        }
        // A status from the handler arrives as the failure, with its message.
        let (failed, _) = try await outcome(
            channel, Grpc_Testing_TestService.Method.unaryCall,
            Grpc_Testing_SimpleRequest.with { $0.responseStatus = .with { $0.code = 9; $0.message = "not now" } }.serializedBytes())
        XCTAssertEqual(failed.failure?.code, .failedPrecondition)
        XCTAssertEqual(failed.failure?.message, "not now")
        channel.close()
        await server.shutdown()
    }

    /// A call whose deadline has already passed is not started: DEADLINE_EXCEEDED
    /// at once, from `unary`, `startUnary` and a streaming call alike, whether
    /// or not a connection is ready, and no handler runs.
    func testACallPastItsDeadlineIsNotStarted() async throws {
        let (outcomes, server, channel) = try WaitingService.serve()
        let expired = CallOptions(deadline: .now - .seconds(1))
        let request = Grpc_Testing_Empty()
        for connected in [false, true] {
            if connected {  // make the connection ready, with a call that ends at once
                let _: Grpc_Testing_Empty? = try? await channel.unary(WaitingService.wait, request, options: .timeout(.milliseconds(1)))
                try await waitFor(outcomes, ["cancelled"])
            }
            let started = ContinuousClock.now
            do {
                let _: Grpc_Testing_Empty = try await channel.unary(WaitingService.wait, request, options: expired)
                XCTFail("unary started past its deadline")
            } catch let e as RPCError {
                XCTAssertEqual(e.code, .deadlineExceeded, "connected: \(connected)")
            }
            let (outcome, _) = try await outcome(channel, WaitingService.wait, request.serializedBytes(), options: expired)
            XCTAssertEqual(outcome.failure?.code, .deadlineExceeded, "connected: \(connected)")
            do {
                try await channel.withCall(WaitingService.wait, options: expired) { _ in XCTFail("streaming call started past its deadline") }
            } catch let e as RPCError {
                XCTAssertEqual(e.code, .deadlineExceeded, "connected: \(connected)")
            }
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(1), "no call waited")
        }
        try await Task.sleep(for: .milliseconds(100))
        let handled = await outcomes.values
        XCTAssertEqual(handled, ["cancelled"], "only the probe call reached a handler")
        channel.close()
        await server.shutdown()
    }

    func testDeadlineAndCancelEndTheCallOnBothSides() async throws {
        let (outcomes, server, channel) = try WaitingService.serve()
        let _: Grpc_Testing_Empty? = try? await channel.unary(WaitingService.wait, Grpc_Testing_Empty(), options: .timeout(.milliseconds(1)))
        try await waitFor(outcomes, ["cancelled"])  // connected; the probe call is over

        let (timedOut, _) = try await outcome(channel, WaitingService.wait, [], options: .timeout(.milliseconds(100)))
        XCTAssertEqual(timedOut.failure?.code, .deadlineExceeded)
        try await waitFor(outcomes, ["cancelled", "cancelled"])

        let (cancelled, _) = try await outcome(channel, WaitingService.wait, []) { handle in
            try await Task.sleep(for: .milliseconds(100))
            handle.cancel()
        }
        XCTAssertEqual(cancelled.failure?.code, .cancelled)
        try await waitFor(outcomes, ["cancelled", "cancelled", "cancelled"])
        channel.close()
        await server.shutdown()
    }

    func testPeerDownIsUnavailable() async throws {
        let probe = WireServer(name: "test", services: [InteropTestService()], secret: WireTransportTests.secret)
        let port = try probe.start(port: 0)
        await probe.shutdown()
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: WireTransportTests.secret, peerName: "tests")
        let (outcome, _) = try await outcome(channel, Grpc_Testing_TestService.Method.emptyCall, [])
        XCTAssertEqual(outcome.failure?.code, .unavailable)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
}
