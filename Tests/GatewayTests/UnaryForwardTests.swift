import Foundation
import Gateway
import TestSupport
import Wire
import XCTest

/// The gateway's task-free unary path (`UnaryForward`) with a real client
/// (Python grpcio) and a backend handler that waits: the client's deadline
/// and the client's cancel, once the request is complete, must both end
/// the backend's handler, not only the client's view of the call.
final class UnaryForwardTests: XCTestCase {
    static let secret = Array("unary-forward-secret".utf8)

    func testDeadlineAndCancelReachTheBackendHandler() async throws {
        let outcomes = WaitingService.Outcomes()
        let backend = WireServer(name: "probe", services: [WaitingService(outcomes: outcomes)], secret: Self.secret)
        let backendPort = try backend.start(port: 0)
        var config = GatewayConfig(
            jwtSecret: Array("unary-forward-jwt-secret".utf8), internalSecret: Self.secret,
            backends: [.init(name: "probe", host: "127.0.0.1", port: backendPort, packages: ["probe"])],
            methods: [WaitingService.wait], files: [],
            policy: AccessPolicy(publicServices: [WaitingService.wait.service], permissions: [:]), rateLimits: [], log: { _ in })
        config.port = 0
        let gateway = try Gateway(config: config)
        let (port, _) = try gateway.start()

        let script = """
            import sys, time, grpc
            channel = grpc.insecure_channel(sys.argv[1])
            wait = channel.unary_unary("/probe.Probe/Wait", request_serializer=lambda b: b, response_deserializer=lambda b: b)
            try:
                wait(b"", timeout=0.3)
                print("deadline: no error")
            except grpc.RpcError as e:
                print("deadline:", e.code().name)
            call = wait.future(b"")
            time.sleep(0.3)
            print("cancel:", call.cancel())
            """
        let (status, out) = try runToEnd("/usr/bin/env", ["python3", "-c", script, "127.0.0.1:\(port)"])
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("deadline: DEADLINE_EXCEEDED"), out)
        XCTAssertTrue(out.contains("cancel: True"), out)
        // Both backend handlers were cancelled: one by the forwarded deadline, one by the client's RST_STREAM.
        try await waitFor(outcomes, ["cancelled", "cancelled"])
        // The gateway ended both calls once. The client's own deadline fires first (the gateway's
        // grpc-timeout counts from when the headers arrived), so its RST_STREAM usually makes the
        // first call CANCELLED at the gateway too; its own timer would make it DEADLINE_EXCEEDED.
        let metrics = gateway.metricsText
        let ended = metrics.split(separator: "\n")
            .filter { $0.hasPrefix(#"croupier_gateway_requests_total{method="/probe.Probe/Wait""#) }
            .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
            .reduce(0, +)
        XCTAssertEqual(ended, 2, metrics)
        XCTAssertTrue(metrics.contains("croupier_gateway_in_flight 0"), metrics)
        XCTAssertTrue(metrics.contains("croupier_gateway_streams 0"), metrics)
        await gateway.shutdown(timeout: .seconds(2))
        await backend.shutdown()
    }
}
