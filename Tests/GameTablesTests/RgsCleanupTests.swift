import Foundation
import GameTablesService
import Wire
import TestSupport
import XCTest

/// The RGS side: the pure plan, then whole runs against a real Games server.
final class RgsCleanupTests: XCTestCase {
    func row(_ id: String, _ bo: Int64, _ currency: String, active: Bool = true) -> RgsTableRow {
        RgsTableRow(tableID: id, serverID: "s", boID: bo, currency: currency, active: active, archivedAtMillis: nil)
    }

    func testThePlanSplitsForeignTablesByTrafficAndSlicesBy500() throws {
        let tables = [row("eur-1", 1, "EUR"), row("usd-busy", 2, "USD"), row("usd-idle", 3, "USD"), row("gbp-old", 4, "GBP", active: false)]
        let plan = try CleanupPlan.make(tables: tables, requiredCurrencies: ["EUR"], trafficked: ["usd-busy"])
        XCTAssertEqual(plan.toArchive.map(\.tableID), ["usd-busy"])
        XCTAssertEqual(plan.toDelete.map(\.tableID), ["usd-idle"], "inactive tables are left alone")
        XCTAssertEqual(plan.slices.map(\.boIDs), [[3], [2]])
        let many = (1...1_201).map { row("t\($0)", Int64($0), "USD") }
        let big = try CleanupPlan.make(tables: many, requiredCurrencies: ["EUR"], trafficked: [])
        XCTAssertEqual(big.slices.map(\.boIDs.count), [500, 500, 201])
        XCTAssertThrowsError(try CleanupPlan.make(tables: [row("x", 0, "USD")], requiredCurrencies: ["EUR"], trafficked: []))
    }

    /// env-a: server a1 (mixed tables), a2 (a table with no back-office id: fails), a3 (nothing to do);
    /// env-b: only an inactive server (skipped).
    func loadEstate(_ h: GameTablesHarness, tablesPerServer: Int = 700) async throws -> (archive: [Int64], delete: [Int64]) {
        var records: [Croupier_Gametables_V1_EstateRecord] = [
            .with { $0.environment = .with { $0.environmentId = "env-a"; $0.requiredCurrencies = ["EUR"] } },
            .with { $0.environment = .with { $0.environmentId = "env-b"; $0.requiredCurrencies = ["EUR"] } },
            .with { $0.server = .with { $0.serverId = "a1"; $0.environmentId = "env-a"; $0.active = true } },
            .with { $0.server = .with { $0.serverId = "a2"; $0.environmentId = "env-a"; $0.active = true } },
            .with { $0.server = .with { $0.serverId = "a3"; $0.environmentId = "env-a"; $0.active = true } },
            .with { $0.server = .with { $0.serverId = "b1"; $0.environmentId = "env-b"; $0.active = false } },
        ]
        var archive: [Int64] = []
        var delete: [Int64] = []
        for i in 1...tablesPerServer {
            let bo = Int64(i)
            let currency = i % 5 == 0 ? "EUR" : "USD"
            records.append(.with { $0.table = .with { $0.tableId = "a1-\(i)"; $0.serverId = "a1"; $0.boId = bo; $0.currency = currency; $0.active = true } })
            if currency == "EUR" { continue }
            if i % 2 == 0 {
                archive.append(bo)
                records.append(.with { $0.traffic = .with { $0.tableId = "a1-\(i)"; $0.period = "2026-10"; $0.rounds = Int64(i); $0.ggr = 1.5 } })
            } else {
                delete.append(bo)
            }
        }
        records.append(.with { $0.table = .with { $0.tableId = "a2-orphan"; $0.serverId = "a2"; $0.boId = 0; $0.currency = "USD"; $0.active = true } })
        records.append(.with { $0.table = .with { $0.tableId = "a3-1"; $0.serverId = "a3"; $0.boId = 90_001; $0.currency = "EUR"; $0.active = true } })
        records.append(.with { $0.table = .with { $0.tableId = "b1-1"; $0.serverId = "b1"; $0.boId = 90_002; $0.currency = "USD"; $0.active = true } })
        let sent = records
        let summary = try await h.rgsClient.loadEstate { w in for r in sent { try await w.write(r) } }
        XCTAssertEqual(summary.servers, 4)
        try await h.loadGameTables(Array(1...Int64(tablesPerServer)) + [90_001, 90_002])
        return (archive, delete)
    }

    func testAWholeRunArchivesOnBothSidesWithOneArchivedAt() async throws {
        let h = try await GameTablesHarness()
        try await h.games.start()
        try await h.startRGS()
        let (archive, delete) = try await loadEstate(h)
        let started = try await h.rgsClient.kickoffCleanup(.with { $0.runId = "run-1" })
        XCTAssertEqual(started.skippedEnvironments, ["env-b"], "no active servers")
        let archivedAt = ArchiveTime.of(dayContaining: GameTablesHarness.start)
        XCTAssertEqual(started.archivedAtMs, archivedAt)
        var run = started
        try await eventually("the run to finish") {
            run = try await h.rgsClient.getCleanupRun(.with { $0.runId = "run-1" })
            return run.state != .pending && run.state != .sending
        }
        let jobs = Dictionary(uniqueKeysWithValues: run.environments.flatMap(\.servers).map { ($0.serverId, $0) })
        XCTAssertEqual(jobs["a1"]?.state, .done)
        XCTAssertEqual(jobs["a1"]?.toArchive, Int64(archive.count))
        XCTAssertEqual(jobs["a1"]?.toDelete, Int64(delete.count))
        XCTAssertEqual(jobs["a1"]?.slices, 2)  // 280 to delete, 280 to archive
        XCTAssertEqual(jobs["a1"]?.slicesAcknowledged, 2)
        XCTAssertEqual(jobs["a2"]?.state, .failed, "a failure is recorded …")
        XCTAssertTrue(jobs["a2"]?.failure.contains("a2-orphan") ?? false)
        XCTAssertEqual(jobs["a3"]?.state, .nothingToDo, "… and the chain moves on")
        XCTAssertEqual(run.state, .failed)

        // RGS: deleted tables are gone, archived ones carry the run's archived_at.
        let local = try await h.rgsClient.listRgsTables(.with { $0.serverId = "a1" }).tables
        XCTAssertEqual(local.count, 700 - delete.count)
        XCTAssertTrue(local.filter { !$0.active }.allSatisfy { $0.archivedAtMs == archivedAt })
        XCTAssertEqual(local.filter { !$0.active }.count, archive.count)
        // Games: every cleaned table archived once, with the same archived_at.
        try await eventually("Games operations to finish") {
            let tables = try await h.cleanup.getGameTables(.with { $0.ids = archive + delete }).tables
            return tables.allSatisfy { !$0.active }
        }
        let games = try await h.cleanup.getGameTables(.with { $0.ids = archive + delete }).tables
        XCTAssertTrue(games.allSatisfy { $0.archivedAtMs == archivedAt })
        let untouched = try await h.cleanup.getGameTables(.with { $0.ids = [5, 10, 90_001, 90_002] }).tables
        XCTAssertTrue(untouched.allSatisfy(\.active), "EUR tables and the inactive server's tables stay")
        for id in [archive[0], delete[0]] {
            let v = try await h.cleanup.listVersions(.with { $0.tableId = id }).versions
            XCTAssertEqual(v.map(\.event), ["archive"])
        }
        // Kickoff with the same run id is the same run.
        let again = try await h.rgsClient.kickoffCleanup(.with { $0.runId = "run-1" })
        XCTAssertEqual(again.startedAtMs, started.startedAtMs)
        await h.stop()
    }

    func testOperationsAcceptedBeforeTheGamesWorkersStartRunOnce() async throws {
        // Games accepts the slices (RECEIVED) while its workers are not running yet; starting them resumes each once.
        let h = try await GameTablesHarness()
        try await h.startRGS()
        let (archive, delete) = try await loadEstate(h, tablesPerServer: 50)
        let run = try await h.rgsClient.kickoffCleanup(.with { $0.runId = "run-2" })
        XCTAssertEqual(run.runId, "run-2")
        try await eventually("the slices to be acknowledged") {
            let r = try await h.rgsClient.getCleanupRun(.with { $0.runId = "run-2" })
            return r.environments.flatMap(\.servers).first { $0.serverId == "a1" }.map { $0.slicesAcknowledged == $0.slices } ?? false
        }
        let waiting = try await h.cleanup.getGameTables(.with { $0.ids = archive }).tables
        XCTAssertTrue(waiting.allSatisfy(\.active), "accepted, not yet run")
        try await h.games.start()
        try await eventually("the run to finish") {
            let r = try await h.rgsClient.getCleanupRun(.with { $0.runId = "run-2" })
            return r.state == .failed || r.state == .done
        }
        try await eventually("Games to archive") {
            try await h.cleanup.getGameTables(.with { $0.ids = archive + delete }).tables.allSatisfy { !$0.active }
        }
        let versions = try await h.cleanup.listVersions(.with { $0.tableId = archive[0] }).versions
        XCTAssertEqual(versions.count, 1)
        await h.stop()
    }
}
