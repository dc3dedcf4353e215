import Wire
import XCTest

/// The generated `ServiceProtocol` and `Client` for grpc.testing.TestService,
/// exercised through the in-process channel: all four call kinds, errors,
/// unimplemented methods and deadlines.
final class GeneratedServiceTests: XCTestCase {
    let client = Grpc_Testing_TestService.Client(channel: InProcessChannel(services: [InteropTestService()]))

    func testUnary() async throws {
        let response = try await client.unaryCall(
            .with { $0.responseSize = 314_159; $0.payload = .with { $0.body = [UInt8](repeating: 0, count: 271_828) } },
            options: CallOptions(metadata: Metadata([("x-user", "alice")])))
        XCTAssertEqual(response.payload?.body.count, 314_159)
        XCTAssertEqual(response.username, "alice")
        _ = try await client.emptyCall(Grpc_Testing_Empty())
    }

    func testServerStreaming() async throws {
        let sizes: [Int32] = [31_415, 9, 2_653, 58_979]
        let received = Received()
        try await client.streamingOutputCall(.with {
            $0.responseParameters = sizes.map { s in .with { $0.size = s } }
        }) { await received.add($0.payload?.body.count ?? -1) }
        let counts = await received.values
        XCTAssertEqual(counts, sizes.map(Int.init))
    }

    func testClientStreaming() async throws {
        let response = try await client.streamingInputCall { writer in
            for size in [27_182, 8, 1_828, 45_904] {
                try await writer.write(.with { $0.payload = .with { $0.body = [UInt8](repeating: 0, count: size) } })
            }
        }
        XCTAssertEqual(response.aggregatedPayloadSize, 74_922)
    }

    func testBidirectionalStreaming() async throws {
        let received = Received()
        try await client.fullDuplexCall(requests: { writer in
            for size in [31_415, 9, 2_653, 58_979] {
                try await writer.write(.with { $0.responseParameters = [.with { $0.size = Int32(size) }] })
            }
        }, onResponse: { await received.add($0.payload?.body.count ?? -1) })
        let counts = await received.values
        XCTAssertEqual(counts, [31_415, 9, 2_653, 58_979])
    }

    func testHandlerStatusReachesCaller() async throws {
        do {
            _ = try await client.unaryCall(.with { $0.responseStatus = .with { $0.code = 2; $0.message = "test status message" } })
            XCTFail("expected an error")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .unknown)
            XCTAssertEqual(error.message, "test status message")
        }
    }

    func testUnknownMethodIsUnimplemented() async throws {
        let other = Grpc_Testing_UnimplementedService.Client(channel: client.channel)
        do {
            _ = try await other.unimplementedCall(Grpc_Testing_Empty())
            XCTFail("expected UNIMPLEMENTED")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .unimplemented)
            XCTAssertTrue(error.message.contains("/grpc.testing.UnimplementedService/UnimplementedCall"))
        }
    }

    func testDeadlineCancelsHandler() async throws {
        do {
            try await client.streamingOutputCall(
                .with { $0.responseParameters = [.with { $0.size = 1; $0.intervalUs = 5_000_000 }] },
                options: .timeout(.milliseconds(50))) { _ in }
            XCTFail("expected DEADLINE_EXCEEDED")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .deadlineExceeded)
        }
    }

    func testUndecodableRequestIsInvalidArgument() async throws {
        let channel = client.channel
        do {
            _ = try await channel.withCall(Grpc_Testing_TestService.Method.unaryCall, options: CallOptions()) { call in
                try await call.send([0x0F])  // wire type 7: not protobuf
                try await call.finishSending()
                return try await call.receive()
            }
            XCTFail("expected INVALID_ARGUMENT")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .invalidArgument)
            XCTAssertTrue(error.message.contains("grpc.testing.SimpleRequest"), error.message)
        }
    }
}

actor Received {
    var values: [Int] = []
    func add(_ v: Int) { values.append(v) }
}
