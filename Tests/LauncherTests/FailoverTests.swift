import Foundation
import StagingService
import Storage
import XCTest

/// Replicas on one PostgreSQL behind the gateway: `croupier up` runs 3
/// loyalty and 2 staging replicas; Python grpcio clients drive rewards,
/// imports and overrides through the gateway while the test SIGKILLs one
/// replica after another (the supervisor restarts each). Afterwards nothing
/// acknowledged is lost or doubled, balances verify, both staging replicas
/// serve the same event stream, and staging's singleton changed hands only
/// when its owner died.
final class FailoverTests: XCTestCase {
    static let jwtSecret = "failover-test-jwt-secret"

    func testSIGKILLingReplicasOneAfterAnotherLosesAndDoublesNothing() throws {
        let cluster = try PostgresCluster.shared()
        let (loyaltyDB, stagingDB) = (try cluster.createDatabase(), try cluster.createDatabase())
        let dir = try makeTemporaryDirectory("failover").path
        let config = """
            {"dataDir": "\(dir)", "ports": {"interop": 0, "loyalty": 0, "games": 0, "rgs": 0, "staging": 0},
             "replicas": {"loyalty": 3, "staging": 2},
             "loyalty": {"database": "\(loyaltyDB)", "manualRewardsPerMinute": 1000000, "manualRewardAlertPerHour": 1000000},
             "staging": {"database": "\(stagingDB)", "leaseSeconds": 2.0, "diffRetryBaseSeconds": 0.05},
             "gateway": {"listen": "127.0.0.1:0"}}
            """
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        let (up, lines) = try launch(
            ["up", "--config", dir + "/config.json"],
            environment: ["CROUPIER_JWT_SECRET": Self.jwtSecret, "CROUPIER_RESTART_STABLE_SECONDS": "1"], withStandardError: true)
        defer { if up.isRunning { kill(up.processIdentifier, SIGKILL) } }
        XCTAssertTrue(waitFor(lines, "all components running", timeout: 90), lines.all)
        let gateway = try XCTUnwrap(lines.all.components(separatedBy: "gateway ready on ").dropFirst().first?.split(separator: "\n").first)

        let load = try FailoverLoad(gateway: String(gateway), jwtSecret: Self.jwtSecret)
        Thread.sleep(forTimeInterval: 4)  // the clients get going

        for label in ["loyalty-1", "staging-1", "loyalty-2", "staging-2", "loyalty-3", "staging-1"] {
            let restartsBefore = lines.all.components(separatedBy: "\(label) restarted on").count
            let pid = try XCTUnwrap(Self.child(of: up.processIdentifier, replica: label), "no process for \(label)")
            kill(pid, SIGKILL)
            XCTAssertTrue(waitFor(lines, "\(label) exited", timeout: 10))
            let deadline = Date().addingTimeInterval(60)
            while lines.all.components(separatedBy: "\(label) restarted on").count == restartsBefore && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.1)
            }
            XCTAssertLessThan(Date(), deadline, "\(label) was not restarted: \(lines.all.suffix(2_000))")
            Thread.sleep(forTimeInterval: 2)  // load runs against the restarted replica
        }
        try load.finishAndCheck("failover")

        // Staging's singleton: one term per owner, and it moved when its owner was killed.
        let database = try Database(path: stagingDB, owner: "staging", migrations: StagingRole.migrations)
        let terms = try blockingRead(database) { db in
            try db.query("SELECT holder FROM croupier_singleton_terms WHERE name = 'staging.jobs' ORDER BY term", [], { $0.string(0) })
        }
        database.close()
        XCTAssertGreaterThanOrEqual(terms.count, 2, "the staging jobs never failed over: \(terms)")
        XCTAssertEqual(Set(terms).count, terms.count, "a process took the singleton twice: \(terms)")

        kill(up.processIdentifier, SIGTERM)
        up.waitUntilExit()
    }

    /// The pid of `parent`'s child serving replica `label` (its CROUPIER_REPLICA).
    static func child(of parent: Int32, replica label: String) -> Int32? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for pid in entries.compactMap(Int32.init) {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")"),
                  let ppid = stat[stat.index(close, offsetBy: 2)...].split(separator: " ").dropFirst().first.flatMap({ Int32($0) }),
                  ppid == parent,
                  let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { continue }
            if environ.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "CROUPIER_REPLICA=\(label)" }) {
                return pid
            }
        }
        return nil
    }

    /// A read from a synchronous test.
    func blockingRead<T: Sendable>(_ database: Database, _ body: @escaping @Sendable (SQLConnection) throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { box.result = .success(try await database.read(body)) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }

    final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }
}
