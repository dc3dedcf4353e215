@testable import Croupier
import Foundation
import Wire
import XCTest

/// `croupier up` as an operator's safety net: restarts that back off but
/// recover, no orphans when the supervisor itself is killed, no half-started
/// platform when one component cannot start.
final class SupervisorTests: XCTestCase {
    func testRestartDelayDoublesThenResetsOnceAChildRanLongEnough() {
        var backoff = RestartBackoff()
        backoff.stableMillis = 60_000
        let crashLoop = (0..<9).map { _ in backoff.delayAfterExit(ranMillis: 100) }
        XCTAssertEqual(crashLoop, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000])
        // An hour of service later, a crash is a first crash again.
        XCTAssertEqual(backoff.delayAfterExit(ranMillis: 3_600_000), 500)
        XCTAssertEqual(backoff.restarts, 1)
        XCTAssertEqual(backoff.delayAfterExit(ranMillis: 59_999), 1_000)
    }

    private static let allPortsFree = [
        "CROUPIER_INTEROP_PORT": "0", "CROUPIER_LOYALTY_PORT": "0", "CROUPIER_GAMES_PORT": "0", "CROUPIER_RGS_PORT": "0",
        "CROUPIER_STAGING_PORT": "0", "CROUPIER_GATEWAY_ADDR": "127.0.0.1:0",
    ]

    private func childPIDs(of parent: Int32) throws -> [Int32] {
        let (_, out) = try runToEnd("/usr/bin/pgrep", ["-P", String(parent)])
        return out.split(separator: "\n").compactMap { Int32($0) }
    }

    private func alive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        // A zombie (exited, not yet reaped by its new parent) is gone for our purposes.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !(stat.split(separator: ")").last?.split(separator: " ").first == "Z")
    }

    /// SIGKILL `up`: its children notice the supervisor is gone, drain and
    /// exit, and their ports are free again.
    func testChildrenExitWhenUpIsKilled() throws {
        let data = try makeTemporaryDirectory("orphans").path
        let (up, lines) = try launch(["up"], environment: Self.allPortsFree.merging(["CROUPIER_DATA_DIR": data]) { $1 })
        XCTAssertTrue(waitFor(lines, "all components running"), lines.all)
        let children = try childPIDs(of: up.processIdentifier)
        XCTAssertEqual(children.count, Configuration.components.count, lines.all)
        defer { for c in children where alive(c) { kill(c, SIGKILL) } }

        crash(up)
        let deadline = Date().addingTimeInterval(15)
        while children.contains(where: alive) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertEqual(children.filter(alive), [], "children outlived a SIGKILLed croupier up")
    }

    /// A component that cannot start (its port is taken) stops the start,
    /// and the components started before it are stopped too.
    func testAFailedStartStopsTheComponentsAlreadyStarted() throws {
        let data = try makeTemporaryDirectory("failed-start").path
        let (taken, takenPort) = try Posix.listen(host: "127.0.0.1", port: 0)
        defer { close(taken) }
        // staging starts fifth; interop, loyalty, games and rgs are running by then.
        let (up, lines) = try launch(
            ["up"], environment: Self.allPortsFree.merging(["CROUPIER_DATA_DIR": data, "CROUPIER_STAGING_PORT": String(takenPort)]) { $1 })
        XCTAssertTrue(waitFor(lines, "staging failed to start", timeout: 30), lines.all)
        up.waitUntilExit()
        XCTAssertNotEqual(up.terminationStatus, 0)
        XCTAssertFalse(lines.all.contains("all components running"), lines.all)
        // The components started before the failure are gone: each port they announced can be bound again.
        let announced = lines.all.split(separator: "\n").filter { $0.contains(" ready on 127.0.0.1:") }
            .compactMap { $0.split(separator: ":").last.flatMap { UInt16($0) } }
        XCTAssertEqual(announced.count, 4, "interop, loyalty, games and rgs were running: \(lines.all)")
        for port in announced {
            let bound = try? Posix.listen(host: "127.0.0.1", port: port)
            XCTAssertNotNil(bound, "port \(port) is still held: a component started before the failure was left running")
            if let bound { close(bound.fd) }
        }
    }
}
