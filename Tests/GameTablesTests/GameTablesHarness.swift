import Foundation
import GameTablesService
import Storage
import Synchronization
import TestSupport
import Wire
import XCTest

/// Games (and optionally RGS) over real sockets and real database files.
final class GameTablesHarness: @unchecked Sendable {
    static let secret = Array("gametables-test-secret".utf8)
    /// 2026-11-23T15:00:00Z.
    static let start: Int64 = 1_795_392_000_000 + 15 * 3_600_000

    let directory: URL
    let clock = ManualClock(start)
    let log = Collected<String>()
    let games: GamesRole
    let gamesServer: WireServer
    let gamesChannel: WireChannel
    var rgs: RgsRole?
    var rgsServer: WireServer?
    var rgsChannel: WireChannel?

    init(_ name: String = #function, settings: GamesRole.Settings = GameTablesHarness.fastSettings,
         evaluator: any CapabilityEvaluator = StandingsEvaluator()) async throws {
        directory = try makeTemporaryDirectory("gametables-\(name.filter(\.isLetter))")
        let log = self.log
        games = try GamesRole(
            path: try TestEngine.isPostgres ? TestEngine.location("games") : directory.appendingPathComponent("games.sqlite").path,
            settings: settings, clock: clock, evaluator: evaluator,
            log: { log.append($0) })
        gamesServer = WireServer(name: "games", services: games.services, secret: Self.secret)
        let port = try gamesServer.start(port: 0)
        gamesChannel = WireChannel(host: "127.0.0.1", port: port, secret: Self.secret, peerName: "tests")
    }

    static var fastSettings: GamesRole.Settings {
        var s = GamesRole.Settings()
        s.batchPause = .zero
        return s
    }

    /// Adds the RGS role, a Wire client of this Games server.
    func startRGS() async throws {
        let log = self.log
        let r = try RgsRole(
            path: try TestEngine.isPostgres ? TestEngine.location("rgs") : directory.appendingPathComponent("rgs.sqlite").path,
            games: gamesChannel, clock: clock, log: { log.append($0) })
        let server = WireServer(name: "rgs", services: r.services, secret: Self.secret)
        let port = try server.start(port: 0)
        rgs = r
        rgsServer = server
        rgsChannel = WireChannel(host: "127.0.0.1", port: port, secret: Self.secret, peerName: "tests")
        try await r.start()
    }

    var cleanup: Croupier_Gametables_V1_GamesCleanup.Client { .init(channel: gamesChannel) }
    var runtime: Croupier_Gametables_V1_GameRuntime.Client { .init(channel: gamesChannel) }
    var rgsClient: Croupier_Gametables_V1_RgsCleanup.Client { .init(channel: rgsChannel!) }

    func stop() async {
        rgsChannel?.close()
        if let rgsServer { await rgsServer.shutdown(timeout: .seconds(2)) }
        rgs?.stop()
        gamesChannel.close()
        await gamesServer.shutdown(timeout: .seconds(2))
        games.stop()
    }

    /// Loads tables 1...n (or the given ids) on the Games side.
    func loadGameTables(_ ids: [Int64], inPlay: Set<Int64> = []) async throws {
        _ = try await cleanup.loadGameTables { w in
            for id in ids {
                try await w.write(.with {
                    $0.id = id
                    $0.name = "table-\(id)"
                    $0.currency = "USD"
                    $0.active = true
                    $0.inPlay = inPlay.contains(id)
                })
            }
        }
    }

    func cleanupRequest(_ requestID: String, _ ids: [Int64], async: Bool = false, action: Croupier_Gametables_V1_CleanupAction = .archive)
        -> Croupier_Gametables_V1_CleanupGameTablesRequest
    {
        .with {
            $0.requestId = requestID
            $0.ids = ids
            $0.action = action
            $0.archivedAtMs = ArchiveTime.of(dayContaining: Self.start)
            $0.async = async
        }
    }
}
