import Foundation
import Wire
import XCTest

/// `croupier up` as a user runs it: real child processes, a crashed child
/// restarted, SIGTERM stops everything cleanly.
final class LauncherTests: XCTestCase {
    func testUpStartsSupervisesAndStops() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-up-\(UUID().uuidString)").path
        let up = Process()
        up.executableURL = URL(fileURLWithPath: croupier)
        up.arguments = ["up"]
        up.environment = ProcessInfo.processInfo.environment.merging(["CROUPIER_DATA_DIR": data, "CROUPIER_INTEROP_PORT": "0", "CROUPIER_LOYALTY_PORT": "0", "CROUPIER_GAMES_PORT": "0", "CROUPIER_RGS_PORT": "0", "CROUPIER_STAGING_PORT": "0", "CROUPIER_GATEWAY_ADDR": "127.0.0.1:0"]) { $1 }
        let out = Pipe()
        up.standardOutput = out
        let lines = Lines()
        out.fileHandleForReading.readabilityHandler = { h in lines.append(String(decoding: h.availableData, as: UTF8.self)) }
        try up.run()
        defer { if up.isRunning { kill(up.processIdentifier, SIGKILL) } }

        XCTAssertTrue(waitFor(lines, "all components running"), lines.all)
        let secret = try String(contentsOfFile: data + "/internal-secret", encoding: .utf8)
        func port() -> UInt16? {
            lines.all.split(separator: "\n").last { $0.contains("interop ready on") || $0.contains("interop restarted on") }
                .flatMap { UInt16($0.split(separator: ":").last!) }
        }
        let first = try XCTUnwrap(port())
        let client = Grpc_Testing_TestService.Client(channel: WireChannel(host: "127.0.0.1", port: first, secret: Array(secret.utf8), peerName: "test"))
        _ = try await client.emptyCall(Grpc_Testing_Empty())

        // Kill the child as a crash would; the launcher restarts it.
        let pgrep = Process()
        pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
        // The interop child by its command line (pids wrap around: the first started is not always the lowest).
        pgrep.arguments = ["-P", String(up.processIdentifier), "-f", "serve interop"]
        let pids = Pipe()
        pgrep.standardOutput = pids
        try pgrep.run()
        pgrep.waitUntilExit()
        let child = try XCTUnwrap(Int32(String(decoding: pids.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").first ?? ""))
        kill(child, SIGKILL)
        XCTAssertTrue(waitFor(lines, "interop restarted on"), lines.all)
        let second = try XCTUnwrap(port())
        let again = Grpc_Testing_TestService.Client(channel: WireChannel(host: "127.0.0.1", port: second, secret: Array(secret.utf8), peerName: "test"))
        _ = try await again.emptyCall(Grpc_Testing_Empty())

        kill(up.processIdentifier, SIGTERM)
        up.waitUntilExit()
        XCTAssertEqual(up.terminationStatus, 0)
        // The last output may still be on its way through the pipe's reader.
        XCTAssertTrue(waitFor(lines, "croupier up: stopped", timeout: 5), lines.all)
    }

    /// `--help` (and `-h`) everywhere: every command and benchmark prints its
    /// usage and exits 0 without doing anything else.
    func testEveryCommandAnswersHelp() throws {
        let commands = [[], ["up"], ["serve"], ["token"], ["cert"], ["version"], ["bench"],
                        ["bench", "wire"], ["bench", "gateway"], ["bench", "loyalty"], ["bench", "codec"],
                        ["bench", "storage"], ["bench", "gametables"], ["bench", "staging"]]
        for command in commands {
            for flag in ["--help", "-h"] {
                let run = Process()
                run.executableURL = URL(fileURLWithPath: croupier)
                run.arguments = command + [flag]
                let out = Pipe()
                run.standardOutput = out
                try run.run()
                let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                run.waitUntilExit()
                XCTAssertEqual(run.terminationStatus, 0, "\(command) \(flag)")
                XCTAssertTrue(text.contains("usage: croupier"), "\(command) \(flag): \(text)")
            }
        }
    }

    /// A config file with a duration that is not a sane number of seconds is
    /// refused at start with the key named (it once reached an Int conversion
    /// that trapped, or made every rate-limited call wait forever).
    func testBadDurationsInTheConfigAreRefusedAtStart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cases = [
            (#"{"gateway": {"idleTimeoutSeconds": -1}}"#, "gateway.idleTimeoutSeconds"),
            (#"{"gateway": {"headerTimeoutSeconds": 1e30}}"#, "gateway.headerTimeoutSeconds"),
            (#"{"gateway": {"tlsHandshakeTimeoutSeconds": "soon"}}"#, "gateway.tlsHandshakeTimeoutSeconds"),
            (#"{"gateway": {"rateLimits": {"/a.B/C": {"limit": 3, "periodSeconds": 0}}}}"#, "gateway.rateLimits./a.B/C"),
            (#"{"gateway": {"rateLimits": {"/a.B/C": {"limit": 0, "periodSeconds": 1}}}}"#, "gateway.rateLimits./a.B/C"),
            (#"{"games": {"batchPauseSeconds": -0.5}}"#, "games.batchPauseSeconds"),
            (#"{"games": {"messageRetentionSeconds": 0}}"#, "games.messageRetentionSeconds"),
            (#"{"staging": {"leaseSeconds": 1e300}}"#, "staging.leaseSeconds"),
            (#"{"staging": {"diffRetryBaseSeconds": "1"}}"#, "staging.diffRetryBaseSeconds"),
            (#"{"staging": {"maxImageBytes": 1e12}}"#, "staging.maxImageBytes"),
            (#"{"staging": {"maxImageBytes": -5}}"#, "staging.maxImageBytes"),
            (#"{"gateway": {"maxBufferedBytes": 10}}"#, "gateway.maxBufferedBytes"),
            (#"{"gateway": {"maxConnectionBufferedBytes": 1.5e6}}"#, "gateway.maxConnectionBufferedBytes"),
            (#"{"gateway": {"minPingIntervalSeconds": 0}}"#, "gateway.minPingIntervalSeconds"),
            (#"{"gateway": {"allowTokensWithoutExpiry": "yes"}}"#, "gateway.allowTokensWithoutExpiry"),
        ]
        for (text, key) in cases {
            try text.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
            let (status, output) = try runToEnd(croupier, ["up", "--config", dir + "/config.json"], environment: ["CROUPIER_DATA_DIR": dir])
            XCTAssertNotEqual(status, 0, text)
            XCTAssertTrue(output.contains(key), "\(text): \(output)")
        }
    }
}

