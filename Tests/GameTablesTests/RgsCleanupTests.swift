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

    /// Games has one table per back-office id: each id goes once, and an id
    /// any of whose RGS tables had traffic is archived, with all those tables.
    func testThePlanSendsEachIDOnceAndKeepsAnIDATrafficTableShares() throws {
        let tables = [row("a", 1, "USD"), row("b", 1, "USD"), row("c", 2, "USD"), row("d", 2, "USD"), row("e", 3, "USD")]
        let plan = try CleanupPlan.make(tables: tables, requiredCurrencies: ["EUR"], trafficked: ["d"])
        XCTAssertEqual(plan.slices.map(\.action), [.delete, .archive])
        XCTAssertEqual(plan.slices.map(\.boIDs), [[1, 3], [2]])
        XCTAssertEqual(plan.slices.map { $0.tables.map(\.tableID) }, [["a", "b", "e"], ["c", "d"]])
        XCTAssertEqual(plan.toDelete.map(\.tableID), ["a", "b", "e"])
        XCTAssertEqual(plan.toArchive.map(\.tableID), ["c", "d"])
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
        XCTAssertTrue(
            h.log.all.contains { $0.contains("cleanup_server_failed") && $0.contains("\"server_id\":\"a2\"") && $0.contains("a2-orphan") },
            "a refused plan is logged with its server and reason")

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

/// RGS and Games never diverge: RGS changes a slice's tables only after
/// Games applied it, and only those Games applied.
final class RgsAgreementTests: XCTestCase {
    let archivedAt = ArchiveTime.of(dayContaining: GameTablesHarness.start)

    func table(_ id: String, _ server: String, _ bo: Int64, traffic: Bool = false) -> [Croupier_Gametables_V1_EstateRecord] {
        var records: [Croupier_Gametables_V1_EstateRecord] = [
            .with { $0.table = .with { $0.tableId = id; $0.serverId = server; $0.boId = bo; $0.currency = "USD"; $0.active = true } },
        ]
        if traffic { records.append(.with { $0.traffic = .with { $0.tableId = id; $0.period = "2026-10"; $0.rounds = 4; $0.ggr = 1 } }) }
        return records
    }

    func load(_ h: GameTablesHarness, servers: [String], _ tables: [[Croupier_Gametables_V1_EstateRecord]]) async throws {
        var records: [Croupier_Gametables_V1_EstateRecord] = [
            .with { $0.environment = .with { $0.environmentId = "env"; $0.requiredCurrencies = ["EUR"] } },
        ]
        for s in servers { records.append(.with { $0.server = .with { $0.serverId = s; $0.environmentId = "env"; $0.active = true } }) }
        let sent = records + tables.flatMap { $0 }
        _ = try await h.rgsClient.loadEstate { w in for r in sent { try await w.write(r) } }
    }

    func finish(_ h: GameTablesHarness, _ runID: String) async throws -> Croupier_Gametables_V1_CleanupRun {
        _ = try await h.rgsClient.kickoffCleanup(.with { $0.runId = runID })
        var run = Croupier_Gametables_V1_CleanupRun()
        try await eventually("the run to finish") {
            run = try await h.rgsClient.getCleanupRun(.with { $0.runId = runID })
            return run.state == .done || run.state == .failed
        }
        return run
    }

    /// Every remaining RGS table has its Games table's state; every deleted one's id was in a DELETE operation.
    func assertIdentical(_ h: GameTablesHarness, servers: [String], deletedIDs: Set<Int64>, file: StaticString = #filePath, line: UInt = #line)
        async throws
    {
        var rgs: [Croupier_Gametables_V1_RgsTable] = []
        for s in servers { rgs += try await h.rgsClient.listRgsTables(.with { $0.serverId = s }).tables }
        let games = Dictionary(
            uniqueKeysWithValues: try await h.cleanup.getGameTables(.with { $0.ids = Array(Set(rgs.map(\.boId))) }).tables.map { ($0.id, $0) })
        for t in rgs {
            guard let g = games[t.boId] else { continue }
            XCTAssertEqual(t.active, g.active, "\(t.tableId) vs Games \(t.boId)", file: file, line: line)
            XCTAssertEqual(t.archivedAtMs, g.archivedAtMs, "\(t.tableId) vs Games \(t.boId)", file: file, line: line)
        }
        let deletes = try await h.cleanup.listOperations(.with { $0.action = .delete; $0.status = .deferred }).operations
        XCTAssertEqual(Set(deletes.flatMap(\.affectedIds)), deletedIDs, file: file, line: line)
    }

    func testSharedBackOfficeIDsEndIdenticalOnBothSides() async throws {
        let h = try await GameTablesHarness()
        try await h.games.start()
        try await h.startRGS()
        try await h.loadGameTables([1, 2, 3, 4])
        try await load(h, servers: ["s1"], [
            table("x1a", "s1", 1), table("x1b", "s1", 1),  // shared, no traffic: deleted on RGS, archived for purge on Games
            table("x2a", "s1", 2, traffic: true), table("x2b", "s1", 2),  // shared, one with traffic: kept on both sides
            table("x3a", "s1", 3, traffic: true),
            table("x4a", "s1", 4, traffic: true), table("x4b", "s1", 4, traffic: true),
        ])
        let run = try await finish(h, "shared")
        let job = try XCTUnwrap(run.environments.first?.servers.first)
        XCTAssertEqual(run.state, .done, job.failure)
        XCTAssertEqual(job.toDelete, 2)
        XCTAssertEqual(job.toArchive, 5)
        XCTAssertEqual(job.slicesDetail.map(\.ids), [1, 3], "each back-office id once")
        XCTAssertTrue(job.slicesDetail.allSatisfy { $0.gamesStatus == .deferred && $0.appliedLocally })
        let rgs = try await h.rgsClient.listRgsTables(.with { $0.serverId = "s1" }).tables
        XCTAssertEqual(rgs.map(\.tableId).sorted(), ["x2a", "x2b", "x3a", "x4a", "x4b"])
        XCTAssertTrue(rgs.allSatisfy { !$0.active && $0.archivedAtMs == archivedAt })
        try await assertIdentical(h, servers: ["s1"], deletedIDs: [1])
        for id: Int64 in 1...4 {
            let trail = try await h.cleanup.listVersions(.with { $0.tableId = id }).versions
            XCTAssertEqual(trail.map(\.event), ["archive"], "one version row per visible change")
        }
        await h.stop()
    }

    /// A Games failure (a table in play) leaves the RGS tables as they were;
    /// ids Games does not have leave theirs too; neither job is DONE.
    func testGamesFailuresAndMissingIDsLeaveRGSAsItWas() async throws {
        let h = try await GameTablesHarness()
        try await h.games.start()
        try await h.startRGS()
        try await h.loadGameTables(Array(10...15) + [20], inPlay: [12])
        try await load(h, servers: ["s2", "s3"], [
            table("p10", "s2", 10), table("p11", "s2", 11), table("p12", "s2", 12), table("p13", "s2", 13),
            table("p14", "s2", 14, traffic: true), table("p15", "s2", 15, traffic: true),
            table("m20", "s3", 20), table("m99", "s3", 99),
        ])
        let run = try await finish(h, "failures")
        XCTAssertEqual(run.state, .failed)
        let jobs = Dictionary(uniqueKeysWithValues: run.environments.flatMap(\.servers).map { ($0.serverId, $0) })
        let s2 = try XCTUnwrap(jobs["s2"])
        XCTAssertEqual(s2.state, .failed)
        XCTAssertTrue(s2.failure.contains("table 12 is in play"), s2.failure)
        let failedSlice = try XCTUnwrap(s2.slicesDetail.first { $0.action == .delete })
        XCTAssertEqual(failedSlice.gamesStatus, .failed)
        XCTAssertFalse(failedSlice.appliedLocally)
        let keptSlice = try XCTUnwrap(s2.slicesDetail.first { $0.action == .archive })
        XCTAssertEqual(keptSlice.gamesStatus, .deferred, "the other slice of the server applied on both sides")
        XCTAssertTrue(keptSlice.appliedLocally)
        let s2Tables = Dictionary(uniqueKeysWithValues: try await h.rgsClient.listRgsTables(.with { $0.serverId = "s2" }).tables.map { ($0.tableId, $0) })
        XCTAssertEqual(Set(s2Tables.keys), ["p10", "p11", "p12", "p13", "p14", "p15"], "nothing Games failed is deleted on RGS")
        XCTAssertTrue(["p10", "p11", "p12", "p13"].allSatisfy { s2Tables[$0]?.active == true })
        XCTAssertTrue(["p14", "p15"].allSatisfy { s2Tables[$0]?.active == false })
        let games = try await h.cleanup.getGameTables(.with { $0.ids = Array(10...13) }).tables
        XCTAssertTrue(games.allSatisfy(\.active), "the failed operation changed nothing on Games")

        let s3 = try XCTUnwrap(jobs["s3"])
        XCTAssertEqual(s3.state, .failed)
        XCTAssertTrue(s3.failure.contains("no table"), s3.failure)
        XCTAssertEqual(s3.slicesDetail.first?.missingIds, [99])
        let s3Tables = try await h.rgsClient.listRgsTables(.with { $0.serverId = "s3" }).tables
        XCTAssertEqual(s3Tables.map(\.tableId), ["m99"], "m20 applied on both sides; m99 left as it was")
        XCTAssertEqual(s3Tables.first?.active, true)
        try await assertIdentical(h, servers: ["s2", "s3"], deletedIDs: [20])
        XCTAssertTrue(h.log.all.contains { $0.contains("cleanup_operation_failed_on_games") && $0.contains("s2") })
        XCTAssertTrue(h.log.all.contains { $0.contains("cleanup_ids_missing_on_games") && $0.contains("99") })
        await h.stop()
    }
}
