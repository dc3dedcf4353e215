import Foundation
import StagingService
import Storage
import Synchronization
import Wire
import XCTest

/// A real `croupier serve staging` SIGKILLed (a) mid-merge and (b) mid-diff.
final class StagingCrashTests: XCTestCase {
    static let secret = "staging-crash-secret"

    func start(_ dir: String, port: UInt16 = 0) throws -> (Process, UInt16) {
        let config = dir + "/config.json"
        try #"{"staging": {"leaseSeconds": 1.0, "diffVisibilitySeconds": 2.0, "diffRetryBaseSeconds": 0.05}}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        return try startComponent("staging", environment: [
            "CROUPIER_DATA_DIR": dir, "CROUPIER_INTERNAL_SECRET": Self.secret, "CROUPIER_STAGING_PORT": String(port),
        ], arguments: ["--config", config])
    }

    func client(_ port: UInt16) -> (WireChannel, Croupier_Staging_V1_StagingService.Client) {
        let c = WireChannel(host: "127.0.0.1", port: port, secret: Array(Self.secret.utf8), peerName: "crash-test")
        return (c, .init(channel: c))
    }

    func events(_ client: Croupier_Staging_V1_StagingService.Client, _ game: String) async throws -> [Croupier_Staging_V1_StagingEvent] {
        let out = Mutex<[Croupier_Staging_V1_StagingEvent]>([])
        try await client.watchEvents(.with { $0.gameSlug = game; $0.untilCaughtUp = true }) { e in out.withLock { $0.append(e) } }
        return out.withLock { $0 }
    }

    func testKillMidMergeAndMidDiff() async throws {
        let dir = try makeTemporaryDirectory("staging-crash").path
        var (proc, port) = try start(dir)
        defer { if proc.isRunning { kill(proc.processIdentifier, SIGKILL) } }
        var (channel, staging) = client(port)
        let entities = (0..<60_000).map { i in
            Croupier_Staging_V1_EntityInput.with {
                $0.entityType = "card"
                $0.slug = "card-\(i)"
                $0.fields = ["name": "Card \(i)", "expansion": "set-\(i % 12)", "text": String(repeating: "lorem ", count: 10)]
            }
        }
        let runID = try await staging.importGame { w in
            try await w.write(.with { $0.start = .with { $0.gameSlug = "big" } })
            for s in stride(from: 0, to: entities.count, by: 5_000) {
                try await w.write(.with { $0.batch = .with { $0.entities = Array(entities[s..<s + 5_000]) } })
            }
        }.importRunId

        // (a) Killed while the merge runs.
        try await eventually("the merge to start") {
            let r = try await staging.getImportRun(.with { $0.importRunId = runID })
            return r.status == .running && r.entitiesMerged > 0 || r.status == .succeeded
        }
        let midMerge = try await staging.getImportRun(.with { $0.importRunId = runID })
        let eventsBefore = try await events(staging, "big")
        crash(proc)
        channel.close()
        (proc, port) = try start(dir, port: port)
        (channel, staging) = client(port)
        try await eventually("the run to finish") {
            let r = try await staging.getImportRun(.with { $0.importRunId = runID })
            return r.status == .succeeded && r.diffMessageId > 0 || r.status == .failed
        }
        let finished = try await staging.getImportRun(.with { $0.importRunId = runID })
        XCTAssertEqual(finished.status, .succeeded, finished.error)
        XCTAssertEqual(finished.entitiesMerged, 60_000)
        try await eventually("the import diff") { try await events(staging, "big").contains { $0.type == "diff-change" } }
        try await eventually("the locks to be free") { try await staging.getLocks(.with { $0.gameSlug = "big" }).locks.isEmpty }
        var all = try await events(staging, "big")
        XCTAssertEqual(Array(all.prefix(eventsBefore.count)), eventsBefore, "no event lost")
        XCTAssertEqual(Set(all.map(\.offset)).count, all.count, "no event doubled")
        XCTAssertEqual(all.filter { $0.type == "diff-change" && $0.details["trigger"] == "IMPORT" }.count, 1, "one diff for the import")
        let page = try await staging.listEntities(.with { $0.gameSlug = "big"; $0.pageSize = 1 })
        XCTAssertFalse(page.entities.isEmpty)

        // (b) Killed while a queued diff is being produced: it is redelivered and produced once.
        let beforeDiff = all.last?.offset ?? 0
        _ = try await staging.generateDiff(.with { $0.gameSlug = "big" })
        try await eventually("the diff lock") {
            try await staging.getLocks(.with { $0.gameSlug = "big" }).locks.contains { $0.kind == "diff" }
        }
        crash(proc)
        channel.close()
        (proc, port) = try start(dir, port: port)
        (channel, staging) = client(port)
        try await eventually("the redelivered diff", timeout: .seconds(30)) {
            try await events(staging, "big").contains { $0.offset > beforeDiff && $0.type == "diff-change" }
        }
        try await Task.sleep(for: .seconds(3))  // longer than the visibility timeout: nothing more may come
        all = try await events(staging, "big")
        XCTAssertEqual(all.filter { $0.offset > beforeDiff && $0.type == "diff-change" }.count, 1, "produced exactly once")
        let stats = try await staging.getQueueStats(.init())
        XCTAssertEqual([stats.depth, stats.inFlight, stats.deadLetters], [0, 0, 0])
        try await eventually("the locks to be free") { try await staging.getLocks(.with { $0.gameSlug = "big" }).locks.isEmpty }
        print("staging crash test: killed mid-merge at \(midMerge.entitiesMerged)/60000 merged (\(midMerge.status)), then mid-diff")
        channel.close()
        kill(proc.processIdentifier, SIGTERM)
        proc.waitUntilExit()
    }

    /// Seed 000: deploy is all or nothing. A SIGKILL while a deploy copies
    /// 60,000 changed entities leaves production entirely old, the deploy
    /// ends with one `failed` event after the restart, and the next deploy
    /// makes production entirely new.
    func testKillMidDeployLeavesProductionAllOldOrAllNew() async throws {
        let dir = try makeTemporaryDirectory("staging-deploy-crash").path
        var (proc, port) = try start(dir)
        defer { if proc.isRunning { kill(proc.processIdentifier, SIGKILL) } }
        var (channel, staging) = client(port)
        func importAll(_ version: String) async throws {
            let runID = try await staging.importGame { w in
                try await w.write(.with { $0.start = .with { $0.gameSlug = "big" } })
                for s in stride(from: 0, to: 60_000, by: 5_000) {
                    try await w.write(.with { $0.batch = .with { $0.entities = (s..<s + 5_000).map { i in
                        .with {
                            $0.entityType = "card"
                            $0.slug = "card-\(i)"
                            $0.fields = ["name": "\(version) card \(i)", "expansion": "set-\(i % 12)"]
                        }
                    } } })
                }
            }.importRunId
            try await eventually("import \(version)", timeout: .seconds(60)) {
                let r = try await staging.getImportRun(.with { $0.importRunId = runID })
                return r.status == .succeeded && r.diffMessageId > 0
            }
            // The diff request is done (not just queued) and no lock is held: between the import's lock and
            // the diff worker's, the locks can be free while the diff still waits, and a deploy then is refused.
            try await eventually("the diff to be generated and the locks free") {
                let queued = try await staging.listDiffRequests(.init()).requests
                let locks = try await staging.getLocks(.with { $0.gameSlug = "big" }).locks
                return queued.isEmpty && locks.isEmpty
            }
        }
        let production = try Database(path: dir + "/staging.sqlite", owner: "staging", migrations: StagingRole.migrations)
        defer { production.close() }
        /// Production rows by the version their name carries.
        func versions() async throws -> [String: Int] {
            try await production.read { db in
                var out: [String: Int] = [:]
                for blob in try db.query("SELECT fields FROM production_entities WHERE game_slug = 'big'", [], { $0.blob(0) }) {
                    let text = String(decoding: blob, as: UTF8.self)
                    out[text.contains("OLD card") ? "old" : text.contains("NEW card") ? "new" : "?", default: 0] += 1
                }
                return out
            }
        }

        try await importAll("OLD")
        _ = try await staging.deploy(.with { $0.gameSlug = "big" })
        let deployed = try await versions()
        XCTAssertEqual(deployed, ["old": 60_000])
        try await importAll("NEW")

        // Deploy, and kill the process once the copy is under way (a page or more copied, not all).
        let before = try await events(staging, "big").last?.offset ?? 0
        let deployer = staging
        let deploying = Task { try? await deployer.deploy(.with { $0.gameSlug = "big" }) }
        try await eventually("the deploy's copy to be under way", timeout: .seconds(30)) {
            try await events(staging, "big").contains { e in
                e.offset > before && e.type == "deploy-status" && e.details["state"] == "running" && Int(e.details["done"] ?? "") ?? 0 >= 2_000
            }
        }
        crash(proc)
        _ = await deploying.value
        channel.close()
        let afterKill = try await versions()
        XCTAssertTrue(afterKill == ["old": 60_000] || afterKill == ["new": 60_000], "production after a SIGKILL mid-deploy: \(afterKill)")

        (proc, port) = try start(dir, port: port)
        (channel, staging) = client(port)
        try await eventually("the locks to be free") { try await staging.getLocks(.with { $0.gameSlug = "big" }).locks.isEmpty }
        var deployEvents = try await events(staging, "big").filter { $0.type == "deploy-status" }
        var byDeploy: [String: [String]] = [:]
        for e in deployEvents { byDeploy[e.details["deploy_id"] ?? "none", default: []].append(e.details["state"] ?? "") }
        XCTAssertEqual(byDeploy.count, 2, "\(byDeploy)")
        for (id, states) in byDeploy {
            XCTAssertEqual(states.first, "started", id)
            XCTAssertEqual(states.filter { $0 == "succeeded" || $0 == "failed" }.count, 1, "one terminal event for \(id): \(states)")
            XCTAssertTrue(["succeeded", "failed"].contains(states.last ?? ""), "\(id) ends with its terminal event: \(states)")
        }
        let afterRestart = try await versions()
        XCTAssertEqual(afterRestart, afterKill, "the restart itself changes nothing in production")

        // The next deploy makes production entirely new.
        let r = try await staging.deploy(.with { $0.gameSlug = "big" })
        XCTAssertEqual(r.upserted, 60_000)
        let final = try await versions()
        XCTAssertEqual(final, ["new": 60_000])
        deployEvents = try await events(staging, "big").filter { $0.type == "deploy-status" }
        XCTAssertEqual(deployEvents.last?.details["state"], "succeeded")
        let pending = try await production.read { db in try db.queryFirst("SELECT count(*) FROM production_pending", [], { $0.int(0) }) }
        XCTAssertEqual(pending, 0, "no pending copy is left behind")
        print("staging deploy crash test: killed mid-deploy, production then \(afterKill)")
        channel.close()
        kill(proc.processIdentifier, SIGTERM)
        proc.waitUntilExit()
    }
}
