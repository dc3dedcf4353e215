import Foundation
import XCTest

/// The whole path as a user drives it: `croupier up` (interop service and
/// gateway as separate processes), then Python grpcio — an independent gRPC
/// implementation — over h2c and TLS through gateway → Wire → service.
final class GatewayEndToEndTests: XCTestCase {
    static let jwtSecret = "end-to-end-jwt-secret"

    func testInteropCasesAndGatewayChecksWithPythonGRPC() throws {
        let dir = try makeTemporaryDirectory("gw").path
        let (certStatus, certOut) = try runToEnd(croupier, ["cert", "--dir", dir], environment: ["CROUPIER_DATA_DIR": dir])
        XCTAssertEqual(certStatus, 0, certOut)
        // A service's config section; with CROUPIER_TEST_ENGINE=postgres, on a database of the test's cluster.
        var databases: [String: String] = [:]
        func section(_ component: String, _ settings: String = "") throws -> String {
            var fields = settings.isEmpty ? [] : [settings]
            databases[component] = dir + "/\(component).sqlite"  // croupier up's default: <dataDir>/<component>.sqlite
            if TestEngine.isPostgres {
                databases[component] = try TestEngine.location(component)
                fields.append(#""database": "\#(databases[component]!)""#)
            }
            return #""\#(component)": {\#(fields.joined(separator: ", "))}"#
        }
        // On PostgreSQL every service also runs two replicas: the same checks pass through them.
        let replicas = TestEngine.isPostgres ? #""replicas": {"loyalty": 2, "games": 2, "rgs": 2, "staging": 2},"# : ""
        let config = """
            {"dataDir": "\(dir)", "ports": {"interop": 0, "loyalty": 0, "games": 0, "rgs": 0, "staging": 0}, \(replicas)
             \(try section("games", #""batchPauseSeconds": 0.0"#)), \(try section("rgs")), \(try section("loyalty")), \(try section("staging")),
             "gateway": {"listen": "127.0.0.1:0", "tlsListen": "127.0.0.1:0",
                         "tlsCert": "\(dir)/gateway-cert.pem", "tlsKey": "\(dir)/gateway-key.pem",
                         "headerTimeoutSeconds": 1.0, "tlsHandshakeTimeoutSeconds": 1.0, "corsOrigins": ["https://console.example"],
                         "permissions": {"/grpc.testing.TestService/CacheableUnaryCall": "interop:cache"},
                         "rateLimits": {"/grpc.testing.TestService/EmptyCall": {"limit": 3, "periodSeconds": 1},
                                        "/croupier.loyalty.v1.LoyaltyService/ManualReward": {"limit": 10, "periodSeconds": 3}}}}
            """
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        let env = ["CROUPIER_JWT_SECRET": Self.jwtSecret]

        let (up, lines) = try launch(["up", "--config", dir + "/config.json"], environment: env, withStandardError: true)
        defer { if up.isRunning { kill(up.processIdentifier, SIGKILL) } }
        XCTAssertTrue(waitFor(lines, "all components running"), lines.all)
        let h2c = try XCTUnwrap(address(after: "gateway ready on ", in: lines.all))
        let tls = try XCTUnwrap(address(after: "TLS (h2) on ", in: lines.all))

        // The gRPC interop cases over h2c and TLS.
        try python("grpc_interop.py", [h2c], expect: "14 passed, 0 failed (h2c)")
        try python("grpc_interop.py", [tls, "--tls", dir + "/gateway-cert.pem"], expect: "14 passed, 0 failed (TLS)")
        // gRPC-Web: the interop cases it can carry, binary and text, by a client written from the spec; CORS.
        try python("grpc_web.py", [h2c, "--origin", "https://console.example"], expect: "37 passed, 0 failed (grpc-web)")
        // The same over HTTP/1.1, as a browser on a plain-HTTP page calls, and over TLS with ALPN http/1.1.
        try python("grpc_web.py", [h2c, "--origin", "https://console.example", "--http1.1"], expect: "33 passed, 0 failed (grpc-web over HTTP/1.1)")
        try python("grpc_web.py", [tls, "--http1.1", "--tls", dir + "/gateway-cert.pem"], expect: "32 passed, 0 failed (grpc-web over HTTP/1.1 TLS)")
        // LoyaltyService: staff rewards, the player reads its own balance and ledger.
        try python("loyalty_e2e.py", [h2c, "--jwt-secret", Self.jwtSecret], expect: "11 passed, 0 failed (loyalty)")
        XCTAssertTrue(lines.all.contains(#""event":"manual_reward_issued""#), "the loyalty process logs its rewards")
        // GameTablesService: RGS estate, kickoff, run progress, Games operations and tables.
        try python("gametables_e2e.py", [h2c, "--jwt-secret", Self.jwtSecret], expect: "7 passed, 0 failed (gametables)")
        // StagingService: a 10,000-entity import, live events, diff, deploy, override.
        try python("staging_e2e.py", [h2c, "--jwt-secret", Self.jwtSecret], expect: "8 passed, 0 failed (staging)")
        // JSON calls with curl: the same policies, Connect's unary shape, refused bodies write nothing.
        try python("json_gateway.py", [h2c, "--jwt-secret", Self.jwtSecret], expect: "10 passed, 0 failed (json)")
        try python("json_gateway.py", [h2c, "--jwt-secret", Self.jwtSecret, "--http1.1"], expect: "10 passed, 0 failed (json over HTTP/1.1)")
        // W3C trace context: one trace id in the log lines of every process a request reached.
        try checkTraceContext(h2c, lines: lines)
        // The services' metrics at the gateway's /metrics, scraped while imports queue up and drain.
        try python("metrics_e2e.py", [h2c, "--jwt-secret", Self.jwtSecret], expect: "3 passed, 0 failed (metrics)")
        // The console in headless Chromium; screenshots under .build/artifacts/console.
        try python("console_browser.py", [
            h2c, "--jwt-secret", Self.jwtSecret, "--screenshots", repositoryRoot.path + "/.build/artifacts/console",
            "--up-pid", String(up.processIdentifier), "--staging-db", try XCTUnwrap(databases["staging"]),
        ], expect: "14 passed, 0 failed (console)")
        try checkCallTool(h2c, tls: tls, certificate: dir + "/gateway-cert.pem", environment: env.merging(["CROUPIER_DATA_DIR": dir]) { $1 })

        // A second gateway whose backend is down: its port is a closed one.
        let closed = try PostgresCluster.freePort()
        let (down, downPort) = try startComponent("gateway", environment: env.merging([
            "CROUPIER_DATA_DIR": dir, "CROUPIER_INTEROP_PORT": String(closed), "CROUPIER_GATEWAY_ADDR": "127.0.0.1:0",
        ]) { $1 })
        defer { if down.isRunning { kill(down.processIdentifier, SIGKILL) } }
        let downAddress = "127.0.0.1:\(downPort)"

        let (tokenStatus, token) = try runToEnd(croupier, ["token", "--sub", "bob", "--perms", "interop:cache", "--ttl", "600"],
            environment: env.merging(["CROUPIER_DATA_DIR": dir]) { $1 })
        XCTAssertEqual(tokenStatus, 0, token)
        let (_, pids) = try runToEnd("/usr/bin/pgrep", ["-P", String(up.processIdentifier), "-f", "serve gateway"])
        let gatewayPID = try XCTUnwrap(pids.split(separator: "\n").first.map(String.init), "gateway child pid")
        try python("gateway_checks.py", [
            h2c, "--jwt-secret", Self.jwtSecret, "--down", downAddress,
            "--cli-token", token.trimmingCharacters(in: .whitespacesAndNewlines), "--gateway-pid", gatewayPID, "--tls-target", tls,
        ], expect: "32 passed, 0 failed")

        // Every call left one JSON access-log line carrying its correlation id (services log their own events too).
        let accessLines = lines.all.split(separator: "\n").filter { $0.hasPrefix("{") && $0.contains("\"bytes_in\"") }
        XCTAssertGreaterThan(accessLines.count, 30)
        for line in accessLines.prefix(50) {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            XCTAssertNotNil(object["correlation_id"] as? String)
            XCTAssertNotNil(object["status"] as? String)
            XCTAssertNotNil(object["duration_ms"])
        }
        XCTAssertTrue(lines.all.contains(#""correlation_id":"req-12345678.abc_DEF""#), "a caller's correlation id is logged")
        XCTAssertTrue(
            accessLines.contains { $0.contains(#""correlation_id":"json-e2e-corr-1""#) && $0.contains(#""method":"/croupier.loyalty.v1.LoyaltyService/ManualReward""#) },
            "a JSON call's access-log line carries its correlation id")

        kill(down.processIdentifier, SIGTERM)
        kill(up.processIdentifier, SIGTERM)
        up.waitUntilExit()
        XCTAssertEqual(up.terminationStatus, 0)
    }

    /// `croupier call` against the running platform, as a person uses it: list, describe, a unary call, a
    /// server stream, a client stream from stdin, and errors with their exit codes.
    private func checkCallTool(_ gateway: String, tls: String, certificate: String, environment: [String: String]) throws {
        func call(_ arguments: [String], stdin: String = "", address: String? = nil) throws -> (status: Int32, out: String, err: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: croupier)
            p.arguments = ["call", "--addr", address ?? gateway] + arguments
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let (input, output, error) = (Pipe(), Pipe(), Pipe())
            (p.standardInput, p.standardOutput, p.standardError) = (input, output, error)
            try p.run()
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
            let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let err = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, out, err)
        }
        let services = try call(["--list"])
        XCTAssertEqual(services.status, 0, services.err)
        XCTAssertTrue(services.out.contains("croupier.loyalty.v1.LoyaltyService\n") && services.out.contains("grpc.testing.TestService\n"), services.out)
        let methods = try call(["--list", "croupier.loyalty.v1.LoyaltyService"])
        XCTAssertTrue(methods.out.contains("croupier.loyalty.v1.LoyaltyService.ManualReward\n"), methods.out)
        let described = try call(["--describe", "croupier.loyalty.v1.LoyaltyService.ExportLedger"])
        XCTAssertEqual(described.out, "rpc ExportLedger(croupier.loyalty.v1.ExportLedgerRequest) returns (stream croupier.loyalty.v1.LedgerEntry);\n")
        let message = try call(["--describe", "croupier.loyalty.v1.ManualRewardRequest"])
        XCTAssertTrue(message.out.contains("int64 points = 2;  // JSON: points"), message.out)

        // A unary call, the token minted from --sub/--perms with the configured secret.
        let staff = "call-staff-\(UInt32.random(in: 0..<1_000_000))"
        let reward = try call(["--sub", staff, "--perms", "loyalty:award", "croupier.loyalty.v1.LoyaltyService/ManualReward",
                               #"{"playerId": "call-player", "points": 40, "reason": "Welcome back bonus", "staffId": "\#(staff)"}"#])
        XCTAssertEqual(reward.status, 0, reward.err)
        let entry = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(reward.out.utf8)) as? [String: Any])
        XCTAssertEqual((entry["accrual"] as? [String: Any])?["points"] as? String, "40", reward.out)
        // A server stream: one line per message, as they come.
        let stream = try call(["grpc.testing.TestService/StreamingOutputCall", #"{"responseParameters": [{"size": 3}, {"size": 5}]}"#])
        XCTAssertEqual(stream.out, #"{"payload":{"body":"AAAA"}}"# + "\n" + #"{"payload":{"body":"AAAAAAA="}}"# + "\n", stream.err)
        // A client stream: one request per line of stdin.
        let upload = try call(["grpc.testing.TestService.StreamingInputCall"], stdin: #"{"payload": {"body": "AAAA"}}"# + "\n" + #"{"payload": {"body": "AAAAAAAA"}}"# + "\n")
        XCTAssertEqual(upload.out, #"{"aggregatedPayloadSize":9}"# + "\n", upload.err)
        // Errors: the status name and message on stderr, the code as the exit status.
        let refused = try call(["--sub", staff, "--perms", "loyalty:award", "croupier.loyalty.v1.LoyaltyService/ManualReward",
                                #"{"playerId": "call-player", "points": 40, "reason": "short", "staffId": "\#(staff)"}"#])
        XCTAssertEqual(refused.status, 3, refused.err)
        XCTAssertTrue(refused.err.hasPrefix("ERROR: INVALID_ARGUMENT: reason must be at least 10 characters"), refused.err)
        let anonymous = try call(["croupier.loyalty.v1.LoyaltyService/ManualReward", "{}"])
        XCTAssertEqual(anonymous.status, 16, anonymous.err)
        let status = try call(["--header", "x-grpc-test-echo-trailing-bin: q6ur", "grpc.testing.TestService/UnaryCall",
                               #"{"responseStatus": {"code": 7, "message": "nope"}}"#])
        XCTAssertEqual(status.status, 7, status.err)
        XCTAssertTrue(status.err.contains("ERROR: PERMISSION_DENIED: nope") && status.err.contains("x-grpc-test-echo-trailing-bin"), status.err)
        let typo = try call(["croupier.loyalty.v1.LoyaltyService/ManualReward", #"{"colour": "red"}"#])
        XCTAssertNotEqual(typo.status, 0)
        XCTAssertTrue(typo.err.contains(#"no field "colour""#), typo.err)
        // TLS: the gateway's certificate checked against the one `croupier cert` wrote; unchecked with
        // --insecure; refused against the system's roots, which do not hold a self-signed certificate.
        let checked = try call(["--ca", certificate, "grpc.testing.TestService/UnaryCall", "{}"], address: tls)
        XCTAssertEqual(checked.status, 0, checked.err)
        XCTAssertEqual(checked.out, #"{"payload":{}}"# + "\n")
        let unchecked = try call(["--insecure", "--list"], address: tls)
        XCTAssertTrue(unchecked.out.contains("grpc.testing.TestService\n"), unchecked.err)
        let untrusted = try call(["--tls", "--list"], address: tls)
        XCTAssertNotEqual(untrusted.status, 0)
        XCTAssertTrue(untrusted.err.contains("certificate verify failed"), untrusted.err)
    }

    /// Runs a script of Tests/Conformance with python3; it must exit 0 and print `expect`.
    private func python(_ script: String, _ arguments: [String], expect: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (status, out) = try runToEnd("/usr/bin/env", ["python3", repositoryRoot.path + "/Tests/Conformance/" + script] + arguments)
        print(out)
        XCTAssertEqual(status, 0, out, file: file, line: line)
        XCTAssertTrue(out.contains(expect), out, file: file, line: line)
    }

    /// Calls with a chosen traceparent (trace_e2e.py); their trace id must be in the gateway's access
    /// line, loyalty's reward line, staging's import, merge and diff lines, and the cleanup's lines in RGS
    /// (kickoff) and Games (operation received from the outbox, committed by the worker); a malformed one gets a new trace.
    private func checkTraceContext(_ h2c: String, lines: Lines) throws {
        let newTraceID = { (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined() }
        let (trace, overrideTrace) = (newTraceID(), newTraceID())
        let correlation = "trace-e2e-" + String(trace.prefix(8))
        try python("trace_e2e.py", [h2c, "--jwt-secret", Self.jwtSecret, "--trace", trace, "--override-trace", overrideTrace,
                                    "--correlation", correlation],
                   expect: "5 passed, 0 failed (trace)")
        // Log lines reach the test a little after the calls' effects are visible: wait for each.
        let traced = { (event: String, trace: String, correlation: String?) -> Bool in
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                if lines.all.split(separator: "\n").contains(where: { line in
                    line.contains("\"trace_id\":\"\(trace)\"") && line.contains(event)
                        && (correlation.map { line.contains("\"correlation_id\":\"\($0)\"") } ?? true)
                }) {
                    return true
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return false
        }
        for event in ["\"method\":\"/croupier.staging.v1.StagingService/ImportGame\"", "\"event\":\"import_received\"",
                      "\"event\":\"import_merged\"", "\"event\":\"diff_produced\"", "\"event\":\"manual_reward_issued\"",
                      "\"method\":\"/croupier.loyalty.v1.LoyaltyService/ManualReward\"", "\"event\":\"cleanup_kicked_off\"",
                      "\"event\":\"cleanup_server_planned\"", "\"event\":\"cleanup_operation_received\"",
                      "\"event\":\"cleanup_operation_committed\""] {
            // The same request's correlation id is on every line, next to its trace id: in the work that outlived the call too.
            XCTAssertTrue(traced(event, trace, correlation), "no \(event) line with trace id \(trace) and correlation id \(correlation)")
        }
        // The override's diff request waited in the queue with the override's trace; the worker logged under it.
        for event in ["\"method\":\"/croupier.staging.v1.StagingService/CreateOverride\"", "\"trigger\":\"MANUAL\""] {
            XCTAssertTrue(traced(event, overrideTrace, nil), "no \(event) line with the override's trace id \(overrideTrace)")
        }
        // The malformed traceparent (an all-zero parent id) was replaced by a new trace, not passed on.
        let bad = lines.all.split(separator: "\n").first { $0.contains("\"correlation_id\":\"\(correlation)-bad\"") && $0.contains("\"method\"") }
        XCTAssertNotNil(bad, "no access line for the malformed traceparent's call")
        XCTAssertFalse(bad?.contains("\"trace_id\":\"" + String(repeating: "ab", count: 16) + "\"") ?? true, "a malformed traceparent was kept")
        XCTAssertTrue(bad?.contains("\"trace_id\":\"") ?? false, "no new trace id for the malformed traceparent: \(bad ?? "")")
    }

    private func address(after marker: String, in text: String) -> String? {
        guard let r = text.range(of: marker) else { return nil }
        return String(text[r.upperBound...].prefix { !$0.isWhitespace })
    }

}
