import Foundation
import XCTest

/// `Tests/Conformance/failover_load.py` as a running process: Python grpcio
/// clients driving rewards, imports and overrides through a gateway until
/// told to stop, then reporting what they got acknowledged and what the
/// platform holds.
final class FailoverLoad {
    let process: Process
    let output: Lines
    let stopFile: String

    init(gateway: String, jwtSecret: String) throws {
        stopFile = try makeTemporaryDirectory("failover-load").path + "/stop"
        (process, output) = try launch(
            ["python3", repositoryRoot.path + "/Tests/Conformance/failover_load.py", gateway, "--jwt-secret", jwtSecret, "--until", stopFile],
            executable: "/usr/bin/env", environment: [:], withStandardError: true)
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    /// Stops the clients, waits for their check, and asserts the guarantees:
    /// every acknowledged reward once in the ledger (none lost, none doubled),
    /// balances that verify, every acknowledged override and import in place,
    /// one event history from every replica. Prints the figures under `label`.
    /// `whenHung` runs first if the load does not finish, to print what it waits for.
    func finishAndCheck(_ label: String, file: StaticString = #filePath, line: UInt = #line, whenHung: () throws -> Void = {}) throws {
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        let end = Date().addingTimeInterval(300)
        while process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.2) }
        if process.isRunning {  // where it hangs: the script dumps every thread's stack on SIGUSR1
            try whenHung()
            kill(process.processIdentifier, SIGUSR1)
            Thread.sleep(forTimeInterval: 1)
        }
        XCTAssertFalse(process.isRunning, "the load did not finish: \(output.all.suffix(12_000))", file: file, line: line)
        let json = try XCTUnwrap(output.all.split(separator: "\n").last(where: { $0.hasPrefix("{") }), output.all.suffix(3_000).description)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        print("\(label) load:", json)
        XCTAssertEqual(result["errors"] as? [String], [], "client errors", file: file, line: line)
        let rewards = try XCTUnwrap(result["rewards"] as? Int)
        XCTAssertGreaterThan(rewards, 100, "too little load to mean anything", file: file, line: line)
        XCTAssertEqual(result["ledger_rewards"] as? Int, rewards, "every acknowledged reward once in the ledger, nothing else", file: file, line: line)
        XCTAssertEqual(result["lost"] as? [String], [], "acknowledged rewards lost", file: file, line: line)
        XCTAssertEqual(result["duplicated"] as? [String], [], "rewards applied twice", file: file, line: line)
        XCTAssertEqual(result["consistent"] as? Bool, true, "VerifyBalance, or a balance against the acknowledged rewards", file: file, line: line)
        XCTAssertGreaterThan(result["overrides"] as? Int ?? 0, 0, file: file, line: line)
        XCTAssertEqual(result["overrides_missing"] as? [String], [], "acknowledged overrides lost", file: file, line: line)
        XCTAssertGreaterThan(result["imports"] as? Int ?? 0, 0, file: file, line: line)
        XCTAssertEqual(result["imports_failed"] as? [String], [], "acknowledged imports that did not merge", file: file, line: line)
        XCTAssertEqual(result["event_streams_equal"] as? Bool, true, "replicas served different event streams", file: file, line: line)
        XCTAssertEqual(result["event_offsets_unique"] as? Bool, true, "an event stream with a duplicate or out of order", file: file, line: line)
    }
}
