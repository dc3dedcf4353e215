import Foundation
import LoyaltyService
import Synchronization
import Wire
import XCTest

/// A real `croupier serve loyalty` process is SIGKILLed while 64 clients
/// send rewards and slip completions. After a restart on the same data
/// directory every acknowledged call is in the ledger exactly once, retries
/// of every call (acknowledged or not) change nothing twice, and every
/// balance verifies against its ledger.
final class LoyaltyCrashTests: XCTestCase {
    static let secret = "crash-test-internal-secret"

    struct Acknowledged: Sendable {
        var entryID: Int64
        var key: String
    }

    /// One client's planned calls: a reward, or a slip to start and complete.
    enum Operation: Sendable {
        case reward(player: String, points: Int64, staff: String, rewardID: String)
        case slip(player: String, slipID: String)
    }

    func startLoyalty(_ dir: String) throws -> (Process, UInt16) {
        try startComponent("loyalty", environment: [
            "CROUPIER_DATA_DIR": dir, "CROUPIER_LOYALTY_PORT": "0", "CROUPIER_INTERNAL_SECRET": Self.secret,
        ])
    }

    static func options(_ principal: String, _ permissions: [String]) -> CallOptions {
        var m = Metadata()
        m.set("x-croupier-principal", principal)
        m.set("x-croupier-permissions", permissions.joined(separator: ","))
        return CallOptions(deadline: .now + .seconds(10), metadata: m)
    }

    static let table = Croupier_Loyalty_V1_GameSettings.with {
        $0.houseEdgePercent = 2
        $0.decisionsPerHour = 60
        $0.pointsPerTheoreticalWin = 1
    }

    /// Runs `op`; returns the ledger entry it produced or found.
    static func perform(_ op: Operation, _ client: Croupier_Loyalty_V1_LoyaltyService.Client) async throws -> Acknowledged {
        switch op {
        case .reward(let player, let points, let staff, let rewardID):
            let r = try await client.manualReward(.with {
                $0.playerId = player
                $0.points = points
                $0.reason = "Crash-test goodwill reward"
                $0.staffId = staff
                $0.rewardId = rewardID
            }, options: options(staff, [LoyaltyPermission.award]))
            return Acknowledged(entryID: r.entry!.entryId, key: r.entry!.idempotencyKey)
        case .slip(let player, let slipID):
            let pit = options("pit", [LoyaltyPermission.slip])
            _ = try await client.startRatingSlip(.with {
                $0.slipId = slipID
                $0.playerId = player
                $0.tableId = "t-1"
                $0.gameSettings = table
                $0.averageBet = 100
            }, options: pit)
            let c = try await client.completeRatingSlip(.with {
                $0.slipId = slipID
                $0.durationSeconds = 1800
            }, options: pit)
            return Acknowledged(entryID: c.accrual!.ledgerEntryId, key: slipID)
        }
    }

    static func export(_ client: Croupier_Loyalty_V1_LoyaltyService.Client, _ options: CallOptions) async throws
        -> [Croupier_Loyalty_V1_LedgerEntry]
    {
        let rows = Rows()
        try await client.exportLedger(.init(), options: options) { e in rows.items.withLock { $0.append(e) } }
        return rows.items.withLock { $0 }
    }

    final class Rows: Sendable { let items = Mutex<[Croupier_Loyalty_V1_LedgerEntry]>([]) }

    /// Acknowledged calls by idempotency key.
    final class AckTable: Sendable {
        private let table = Mutex<[String: Acknowledged]>([:])
        func record(_ a: Acknowledged) { table.withLock { $0[a.key] = a } }
        var count: Int { table.withLock { $0.count } }
        var all: [String: Acknowledged] { table.withLock { $0 } }
    }

    static func plan(client k: Int, count: Int) -> [Operation] {
        (0..<count).map { i in
            let player = "player-\((k + i) % 16)"  // 16 players shared by all clients: real contention
            return i % 3 == 2
                ? .slip(player: player, slipID: "c\(k)-s\(i)")
                : .reward(player: player, points: Int64(1 + (k * 7 + i) % 50), staff: "staff-\(k)-\(i)", rewardID: "c\(k)-r\(i)")
        }
    }

    func testAcknowledgedCallsSurviveSIGKILLExactlyOnce() async throws {
        let dir = try makeTemporaryDirectory("loyalty-crash").path
        var (server, port) = try startLoyalty(dir)
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: Array(Self.secret.utf8), peerName: "crash", connections: 4)
        let client = Croupier_Loyalty_V1_LoyaltyService.Client(channel: channel)

        let plans = (0..<64).map { Self.plan(client: $0, count: 400) }
        let acknowledged = AckTable()
        let pid = server.processIdentifier
        let killer = Task {
            // Kill mid-stream, once plenty of calls have been acknowledged.
            while acknowledged.count < 600 { try await Task.sleep(for: .milliseconds(2)) }
            kill(pid, SIGKILL)
        }
        // How many of its calls each client saw acknowledged before the server died.
        let completed = await withTaskGroup(of: (Int, Int).self) { group in
            for (k, plan) in plans.enumerated() {
                group.addTask {
                    for (i, op) in plan.enumerated() {
                        do {
                            let ack = try await Self.perform(op, client)
                            acknowledged.record(ack)
                        } catch {
                            return (k, i)  // the server died under this call
                        }
                    }
                    return (k, plan.count)
                }
            }
            var done: [Int: Int] = [:]
            for await (k, n) in group { done[k] = n }
            return done
        }
        _ = try await killer.value
        server.waitUntilExit()
        XCTAssertEqual(server.terminationReason, .uncaughtSignal)
        channel.close()
        let acked = acknowledged.all
        XCTAssertGreaterThanOrEqual(acked.count, 600)
        XCTAssertLessThan(acked.count, 64 * 400, "the kill landed mid-run")

        (server, port) = try startLoyalty(dir)
        let after = WireChannel(host: "127.0.0.1", port: port, secret: Array(Self.secret.utf8), peerName: "crash-after")
        let admin = Croupier_Loyalty_V1_LoyaltyService.Client(channel: after)
        let adminOptions = Self.options("auditor", [LoyaltyPermission.admin])

        // Every acknowledged call is in the ledger, once, as the entry it was acknowledged with.
        let ledger = try await Self.export(admin, adminOptions)
        let byKey = Dictionary(grouping: ledger, by: \.idempotencyKey)
        XCTAssertEqual(byKey.count, ledger.count, "no idempotency key twice")
        for (key, ack) in acked {
            XCTAssertEqual(byKey[key]?.count, 1, "acknowledged \(key) is in the ledger once")
            XCTAssertEqual(byKey[key]?.first?.entryId, ack.entryID, key)
        }

        // Each client retries everything it sent, including the call in flight at the kill (committed or
        // not, nobody knows): acknowledged calls replay their entry; none is applied twice.
        var retried = 0
        for (k, plan) in plans.enumerated() {
            for op in plan.prefix(min(plan.count, (completed[k] ?? 0) + 1)) {
                let ack = try await Self.perform(op, admin)
                retried += 1
                if let first = acked[ack.key] { XCTAssertEqual(first.entryID, ack.entryID, "client \(k): retry of \(ack.key)") }
            }
        }
        let final = try await Self.export(admin, adminOptions)
        XCTAssertEqual(Set(final.map(\.idempotencyKey)).count, final.count, "no idempotency key twice after retries")
        let attempted = completed.values.reduce(0) { $0 + min($1 + 1, 400) }
        XCTAssertEqual(final.count, attempted, "every call sent exactly once in the ledger")
        let verified = try await admin.verifyBalance(.init(), options: adminOptions)
        XCTAssertTrue(verified.consistent, "\(verified.mismatches)")
        XCTAssertEqual(verified.playersChecked, 16)
        print("loyalty crash test: \(acked.count) calls acknowledged before SIGKILL, \(ledger.count) ledger rows after restart, \(retried) retried, \(final.count) rows after retries")

        after.close()
        kill(server.processIdentifier, SIGTERM)
        server.waitUntilExit()
    }
}
