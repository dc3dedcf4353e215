import Foundation
import LoyaltyService
import Storage
import Synchronization
import TestSupport
import Wire
import XCTest

/// A loyalty server over a real socket and a real SQLite file, with a
/// client that calls it as any principal.
final class LoyaltyHarness: @unchecked Sendable {
    static let secret = Array("loyalty-test-secret".utf8)
    /// 2026-11-23T10:00:00Z.
    static let start: Int64 = 1_795_392_000_000 + 10 * 3_600_000

    let directory: URL
    let clock: ManualClock
    let store: LoyaltyStore
    let server: WireServer
    let channel: WireChannel
    let client: Croupier_Loyalty_V1_LoyaltyService.Client
    let logSink = Collected<String>()

    init(_ name: String = #function, settings: LoyaltySettings = LoyaltySettings()) throws {
        directory = try makeTemporaryDirectory("loyalty-\(name.filter(\.isLetter))")
        clock = ManualClock(Self.start)
        let location = TestEngine.isPostgres ? try TestEngine.location("loyalty") : directory.appendingPathComponent("loyalty.sqlite").path
        store = try LoyaltyStore(path: location, settings: settings, clock: clock)
        let sink = logSink
        server = WireServer(
            name: "loyalty", services: [LoyaltyAPI(store: store, log: LoyaltyLog(sink: { sink.append($0) }))],
            secret: Self.secret)
        let port = try server.start(port: 0)
        channel = WireChannel(host: "127.0.0.1", port: port, secret: Self.secret, peerName: "loyalty-tests")
        client = .init(channel: channel)
    }

    func stop() async {
        channel.close()
        await server.shutdown(timeout: .seconds(2))
        store.close()
    }

    var log: [String] { logSink.all }

    /// Call options as `principal` holding `permissions`, with a correlation id.
    static func as_(_ principal: String, _ permissions: [String], correlation: String = "") -> CallOptions {
        var m = Metadata()
        m.set("x-croupier-principal", principal)
        m.set("x-croupier-permissions", permissions.joined(separator: ","))
        if !correlation.isEmpty { m.set("x-correlation-id", correlation) }
        return CallOptions(metadata: m)
    }

    static let pit = as_("pit-boss", [LoyaltyPermission.slip])
    static let admin = as_("admin-1", [LoyaltyPermission.admin, LoyaltyPermission.viewAll])
    static func staff(_ id: String, correlation: String = "") -> CallOptions {
        as_(id, [LoyaltyPermission.award], correlation: correlation)
    }

    /// 25 average bet × 60 decisions/h × 2 % house edge × 1 point per unit = 30 points an hour.
    static let table = Croupier_Loyalty_V1_GameSettings.with {
        $0.houseEdgePercent = 2
        $0.decisionsPerHour = 60
        $0.pointsPerTheoreticalWin = 1
    }

    func startSlip(_ player: String, id: String = "", bet: Double = 25) async throws -> Croupier_Loyalty_V1_RatingSlip {
        try await client.startRatingSlip(.with {
            $0.slipId = id
            $0.playerId = player
            $0.visitId = "visit-\(player)"
            $0.tableId = "bj-7"
            $0.gameSettings = Self.table
            $0.averageBet = bet
        }, options: Self.pit).slip!
    }

    func complete(_ slipID: String, seconds: Int64? = nil) async throws -> Croupier_Loyalty_V1_CompleteRatingSlipResponse {
        try await client.completeRatingSlip(.with {
            $0.slipId = slipID
            $0.durationSeconds = seconds
        }, options: Self.pit)
    }

    func reward(
        _ player: String, _ points: Int64, staff: String = "staff-1", reason: String = "Birthday bonus for a loyal guest",
        rewardID: String = "", correlation: String = ""
    ) async throws -> Croupier_Loyalty_V1_ManualRewardResponse {
        try await client.manualReward(.with {
            $0.playerId = player
            $0.points = points
            $0.reason = reason
            $0.staffId = staff
            $0.rewardId = rewardID
        }, options: Self.staff(staff, correlation: correlation))
    }

    func balance(_ player: String) async throws -> Croupier_Loyalty_V1_PlayerLoyalty {
        try await client.getPlayerLoyalty(.with { $0.playerId = player }, options: Self.admin)
    }

    func ledger(_ player: String) async throws -> [Croupier_Loyalty_V1_LedgerEntry] {
        try await client.listLedger(.with {
            $0.playerId = player
            $0.pageSize = 500
        }, options: Self.admin).entries
    }

    /// Every alert so far (WatchAlerts until caught up).
    func alerts() async throws -> [Croupier_Loyalty_V1_Alert] {
        let out = Collected<Croupier_Loyalty_V1_Alert>()
        try await client.watchAlerts(.with { $0.untilCaughtUp = true }, options: Self.admin) { out.append($0) }
        return out.all
    }

    func verify() async throws -> Croupier_Loyalty_V1_VerifyBalanceResponse {
        try await client.verifyBalance(.init(), options: Self.admin)
    }
}
