import Foundation
import XCTest

/// The gateway as an attacker meets it: `croupier serve interop` and
/// `croupier serve gateway` as real processes (the gateway with 512 file
/// descriptors, a 64 MiB buffer cap, short timeouts, and PINGs allowed every
/// second, so only the idle rule can close a client pinging every 2 s), attacked by
/// Tests/Conformance/gateway_hostile.py with raw HTTP/2 frames and grpcio
/// while a probe on its own connection must keep being served, then a
/// 10,000-client soak. The gateway must be alive at the end.
final class GatewayHostileTests: XCTestCase {
    static let jwtSecret = "hostile-test-jwt-secret-0123456789"
    static let capMiB = 64

    func testHostileClientsNeitherCrashStarveNorBloatTheGateway() throws {
        let dir = try makeTemporaryDirectory("hostile").path
        let env = ["CROUPIER_JWT_SECRET": Self.jwtSecret, "CROUPIER_INTERNAL_SECRET": "hostile-test-internal-secret-0123", "CROUPIER_DATA_DIR": dir]
        let (interop, interopPort) = try startComponent("interop", environment: env.merging(["CROUPIER_INTEROP_PORT": "0"]) { $1 })
        defer { crash(interop) }
        // Backends other than interop are named but not running: routing to them is not under test.
        let config = """
            {"ports": {"interop": \(interopPort), "loyalty": 1, "games": 1, "rgs": 1, "staging": 1},
             "gateway": {"listen": "127.0.0.1:0", "idleTimeoutSeconds": 3, "headerTimeoutSeconds": 5, "minPingIntervalSeconds": 1,
                         "corsOrigins": ["https://console.example"],
                         "maxBufferedBytes": \(Self.capMiB << 20), "maxConnectionBufferedBytes": \(8 << 20),
                         "permissions": {"/grpc.testing.TestService/CacheableUnaryCall": "interop:cache"}}}
            """
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)

        // 512 descriptors, hard limit too (the gateway raises its soft limit to the hard one).
        let (gateway, lines) = try launch(
            ["--nofile=512:512", croupier, "serve", "gateway", "--config", dir + "/config.json"], executable: "/usr/bin/prlimit",
            environment: env, withStandardError: true)
        defer { if gateway.isRunning { crash(gateway) } }
        XCTAssertTrue(waitFor(lines, "READY gateway"), lines.all)
        let address = try XCTUnwrap(lines.all.split(separator: "\n").first { $0.hasPrefix("READY gateway") }?.split(separator: " ").last)

        let (status, output) = try runToEnd("/usr/bin/env", [
            "python3", repositoryRoot.path + "/Tests/Conformance/gateway_hostile.py", String(address),
            "--gateway-pid", String(gateway.processIdentifier), "--jwt-secret", Self.jwtSecret, "--cap-mib", String(Self.capMiB),
        ])
        print(output)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("23 passed, 0 failed (hostile)"), output)
        XCTAssertTrue(gateway.isRunning, "the gateway died: \(lines.all.suffix(2000))")
        XCTAssertFalse(lines.all.contains("Fatal error"), String(lines.all.suffix(2000)))
        XCTAssertTrue(lines.all.contains("shed: out of file descriptors"), "idle connections were shed when descriptors ran out")

        kill(gateway.processIdentifier, SIGTERM)
        gateway.waitUntilExit()
    }
}
