import Foundation
import StagingService
import Storage
import Synchronization
import TestSupport
import Wire
import XCTest

/// A staging server over a real socket and database file; the importer
/// reaches the DiffQueue over Wire as in production.
final class StagingHarness: @unchecked Sendable {
    static let secret = Array("staging-test-secret".utf8)
    let directory: URL
    let role: StagingRole
    var server: WireServer
    var port: UInt16
    let channel: WireChannel
    let selfChannel: WireChannel
    let log = Collected<String>()

    /// `directory`: reopen an earlier harness's database (a restart).
    init(_ name: String = #function, settings: StagingRole.Settings = StagingHarness.fast, directory: URL? = nil) async throws {
        self.directory = try directory ?? makeTemporaryDirectory("staging-\(name.filter(\.isLetter))")
        let log = self.log
        role = try StagingRole(path: TestEngine.location("staging", in: self.directory), settings: settings, log: { log.append($0) })
        server = WireServer(name: "staging", services: role.services, secret: Self.secret)
        port = try server.start(port: 0)
        channel = WireChannel(host: "127.0.0.1", port: port, secret: Self.secret, peerName: "tests")
        selfChannel = WireChannel(host: "127.0.0.1", port: port, secret: Self.secret, peerName: "importer")
        try await role.start(diffQueue: selfChannel)
    }

    static var fast: StagingRole.Settings {
        var s = StagingRole.Settings()
        s.leaseMillis = 2_000
        s.diffRetryBaseMillis = 20
        return s
    }

    var client: Croupier_Staging_V1_StagingService.Client { .init(channel: channel) }

    /// Options of a call the gateway forwards for `principal` holding `permissions` (comma-separated).
    static func caller(_ principal: String, permissions: String) -> CallOptions {
        var m = Metadata()
        m.set(ForwardedCaller.principalKey, principal)
        m.set(ForwardedCaller.permissionsKey, permissions)
        return CallOptions(metadata: m)
    }

    func stop() async {
        channel.close()
        selfChannel.close()
        await server.shutdown(timeout: .seconds(2))
        role.stop()
    }

    /// A second connection to the database file, for faults the service never produces itself.
    func sideDoor() throws -> Database {
        try Database(path: role.database.path, owner: "staging", migrations: StagingRole.migrations)
    }

    /// Makes `holder` the game's diff-lock holder until `expiresAt`, as a worker elsewhere would.
    static func plantLock(_ side: Database, game: String, holder: String, expiresAt: Int64) async throws {
        try await side.write { tx in
            _ = try tx.execute(
                """
                INSERT INTO locks (game_slug, kind, holder, since, expires_at) VALUES (?, 'diff', ?, 0, ?)
                ON CONFLICT (game_slug, kind) DO UPDATE SET holder = excluded.holder, since = excluded.since, expires_at = excluded.expires_at
                """, [game, holder, expiresAt])
        }
    }

    static func card(_ slug: String, expansion: String, _ extra: [String: String] = [:]) -> Croupier_Staging_V1_EntityInput {
        .with {
            $0.entityType = "card"
            $0.slug = slug
            $0.fields = ["name": slug.uppercased(), "expansion": expansion].merging(extra) { $1 }
        }
    }

    static func cards(_ n: Int, prefix: String = "c", expansions: Int = 3) -> [Croupier_Staging_V1_EntityInput] {
        (0..<n).map { card("\(prefix)\($0)", expansion: "exp-\($0 % expansions)", ["rarity": $0 % 5 == 0 ? "rare" : "common"]) }
    }

    /// Streams an import; returns the run id.
    func importGame(_ game: String, _ entities: [Croupier_Staging_V1_EntityInput], batch: Int = 500) async throws -> String {
        try await client.importGame { w in
            try await w.write(.with { $0.start = .with { $0.gameSlug = game; $0.options = .with { $0.source = "test" } } })
            for start in stride(from: 0, to: entities.count, by: batch) {
                try await w.write(.with { $0.batch = .with { $0.entities = Array(entities[start..<min(start + batch, entities.count)]) } })
            }
        }.importRunId
    }

    func run(_ id: String) async throws -> Croupier_Staging_V1_ImportRun {
        try await client.getImportRun(.with { $0.importRunId = id })
    }

    /// Waits until the run has merged and its diff request was delivered.
    func waitForRun(_ id: String) async throws -> Croupier_Staging_V1_ImportRun {
        var r = try await run(id)
        try await eventually("run \(id)") {
            r = try await run(id)
            return r.status == .failed || (r.status == .succeeded && r.diffMessageId > 0)
        }
        return r
    }

    /// Events after `offset` (until caught up).
    func events(_ game: String = "", after offset: Int64 = 0) async throws -> [Croupier_Staging_V1_StagingEvent] {
        let out = Collected<Croupier_Staging_V1_StagingEvent>()
        try await client.watchEvents(.with {
            $0.gameSlug = game
            $0.afterOffset = offset
            $0.untilCaughtUp = true
        }) { out.append($0) }
        return out.all
    }

    /// Waits until no diff request is queued or running and no lock is held
    /// on `game`. Locks alone can be free between an import's (or an
    /// override's) commit and the diff worker taking its lock, and a deploy
    /// in that gap is rightly refused.
    func waitUntilQuiet(_ game: String) async throws {
        try await eventually("\(game) to be quiet") {
            let queued = try await client.listDiffRequests(.init()).requests
            let locks = try await client.getLocks(.with { $0.gameSlug = game }).locks
            return queued.isEmpty && locks.isEmpty
        }
    }

    /// Waits for a `diff-change` event of `game` after `offset`; returns it.
    func waitForDiff(_ game: String, after offset: Int64 = 0) async throws -> Croupier_Staging_V1_StagingEvent {
        var found: Croupier_Staging_V1_StagingEvent?
        try await eventually("a diff of \(game)") {
            found = try await events(game, after: offset).first { $0.type == "diff-change" }
            return found != nil
        }
        guard let found else { throw TestFailure("no diff of \(game) after offset \(offset); service log:\n\(log.all.suffix(20).joined(separator: "\n"))") }
        return found
    }

    func lastOffset() async throws -> Int64 { try await events().last?.offset ?? 0 }
}
