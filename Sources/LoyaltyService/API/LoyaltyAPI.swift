import Foundation
import Storage
import Wire

/// `croupier.loyalty.v1.LoyaltyService`: decodes, validates and authorizes
/// each call, runs it against the store, maps refusals to status codes and
/// logs the outcome.
public struct LoyaltyAPI: Croupier_Loyalty_V1_LoyaltyService.ServiceProtocol {
    let store: LoyaltyStore
    let log: LoyaltyLog
    var settings: LoyaltySettings { store.settings }

    public init(store: LoyaltyStore, log: LoyaltyLog) {
        self.store = store
        self.log = log
    }

    /// Runs a handler body: refusals become their status code (and a log
    /// line); storage failures become UNAVAILABLE, never a crash.
    func serve<T>(_ context: ServerContext, _ body: (Caller) async throws -> T) async throws -> T {
        let caller = Caller(context)
        do {
            return try await body(caller)
        } catch let e as LoyaltyError {
            log.refusal(method: context.method.method, principal: caller.principal, error: e, correlationID: caller.correlationID)
            throw e.rpcError
        } catch let e as RPCError {
            throw e
        } catch is CancellationError {
            throw RPCError(.cancelled, "the call was cancelled")
        } catch {
            // The detail (SQL, paths) is for the log; the caller gets a plain message it can quote.
            log.failure(method: context.method.method, error: error, correlationID: caller.correlationID)
            throw RPCError(.unavailable, "the loyalty service could not complete the request; correlation id \(caller.correlationID)")
        }
    }

    // MARK: Rating slips

    public func startRatingSlip(
        request: Croupier_Loyalty_V1_StartRatingSlipRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_StartRatingSlipResponse {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.slip)
            let slipID = request.slipId.isEmpty ? "slip_" + UUID().uuidString.lowercased() : request.slipId
            try Identifiers.checkSlipID(slipID)
            try Identifiers.check(request.playerId, "player_id")
            try Identifiers.check(request.tableId, "table_id")
            try Identifiers.check(request.visitId, "visit_id", required: false)
            guard let s = request.gameSettings else { throw LoyaltyError.invalidArgument("game_settings is required") }
            let settings = GameSettings(
                houseEdgePercent: s.houseEdgePercent, decisionsPerHour: s.decisionsPerHour,
                pointsPerTheoreticalWin: s.pointsPerTheoreticalWin)
            try RatingSlip.validate(settings: settings, averageBet: request.averageBet)
            let (slip, replay) = try await store.startSlip(
                RatingSlip(
                    slipID: slipID, playerID: request.playerId, visitID: request.visitId, tableID: request.tableId,
                    settings: settings, averageBet: request.averageBet, startedAtMillis: 0),
                correlationID: caller.correlationID)
            log.line("rating_slip_started", correlationID: caller.correlationID) { w in
                w.field("rating_slip_id", slip.slipID)
                w.field("player_id", slip.playerID)
                w.field("table_id", slip.tableID)
                w.bool("replay", replay)
            }
            return .with {
                $0.slip = ProtoMapping.slip(slip)
                $0.replay = replay
            }
        }
    }

    public func completeRatingSlip(
        request: Croupier_Loyalty_V1_CompleteRatingSlipRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_CompleteRatingSlipResponse {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.slip)
            try Identifiers.checkSlipID(request.slipId)
            if let bet = request.averageBet { try RatingSlip.validate(averageBet: bet) }
            if let d = request.durationSeconds { try RatingSlip.validate(durationSeconds: d) }
            let slip: RatingSlip, accrual: Accrual
            do {
                (slip, accrual) = try await store.completeSlip(
                    slipID: request.slipId, averageBet: request.averageBet, durationSeconds: request.durationSeconds,
                    correlationID: caller.correlationID)
            } catch {
                await logAccrualFailure(slipID: request.slipId, error: error, correlationID: caller.correlationID)
                throw error
            }
            log.entry("loyalty_accrual_completed", accrual, correlationID: caller.correlationID)
            return .with {
                $0.slip = ProtoMapping.slip(slip)
                $0.accrual = ProtoMapping.accrual(accrual, schedule: settings.tiers)
            }
        }
    }

    public func recoverSlipLoyalty(
        request: Croupier_Loyalty_V1_RecoverSlipLoyaltyRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_RecoverSlipLoyaltyResponse {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.admin)
            try Identifiers.checkSlipID(request.slipId)
            let (slip, accrual) = try await store.recoverSlip(slipID: request.slipId, correlationID: caller.correlationID)
            log.entry("loyalty_recovery_completed", accrual, correlationID: caller.correlationID)
            return .with {
                $0.slip = ProtoMapping.slip(slip)
                $0.accrual = ProtoMapping.accrual(accrual, schedule: settings.tiers)
            }
        }
    }

    /// The seed's canonical failure line, `loyalty_accrual_failed`: the
    /// slip, its player, the status code, the message, and whether the slip
    /// may now be closed without its points (`recovery_needed`: runbook 1).
    /// The slip is looked up after the failure; if even that fails, it may be.
    private func logAccrualFailure(slipID: String, error: any Error, correlationID: String) async {
        let view = try? await store.slipView(slipID)
        let lookedUp = view != nil || (error as? LoyaltyError).map { if case .notFound = $0 { true } else { false } } == true
        let recoveryNeeded = lookedUp ? (view?.needsRecovery ?? false) : true
        let code = (error as? LoyaltyError)?.code ?? (error as? RPCError)?.code.name ?? "UNAVAILABLE"
        log.line("loyalty_accrual_failed", correlationID: correlationID) { w in
            w.field("player_id", view?.slip.playerID)
            w.field("rating_slip_id", slipID)
            w.field("error_code", code)
            w.field("message", String(describing: error))
            w.bool("recovery_needed", recoveryNeeded)
        }
    }

    // MARK: Manual rewards

    public func manualReward(
        request: Croupier_Loyalty_V1_ManualRewardRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_ManualRewardResponse {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.award)
            let staff = try caller.authenticated()
            let reward = ManualReward(
                playerID: request.playerId, points: request.points, reason: request.reason, staffID: request.staffId,
                rewardID: request.rewardId, ratingSlipID: request.ratingSlipId, visitID: request.visitId)
            guard reward.staffID == staff else {
                log.line("manual_reward_spoofing_attempt", correlationID: caller.correlationID) { w in
                    w.field("principal", staff)
                    w.field("claimed_staff_id", reward.staffID)
                    w.field("player_id", reward.playerID)
                    w.number("points", reward.points)
                }
                try await store.recordStaffMismatch(
                    caller: staff, claimed: reward.staffID, playerID: reward.playerID, correlationID: caller.correlationID)
                throw LoyaltyError.permissionDenied("staff_id '\(reward.staffID)' is not the caller (\(staff))")
            }
            try reward.validate(settings)
            let accrual = try await store.manualReward(reward, correlationID: caller.correlationID)
            log.entry("manual_reward_issued", accrual, correlationID: caller.correlationID)
            return .with {
                $0.accrual = ProtoMapping.accrual(accrual, schedule: settings.tiers)
                $0.entry = ProtoMapping.entry(accrual.entry)
            }
        }
    }

    // MARK: Reads

    public func getPlayerLoyalty(
        request: Croupier_Loyalty_V1_GetPlayerLoyaltyRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_PlayerLoyalty {
        try await serve(context) { caller in
            try Identifiers.check(request.playerId, "player_id")
            try caller.requireSelfOrViewAll(request.playerId)
            let found = try await store.account(request.playerId)
            return ProtoMapping.player(
                request.playerId, found?.account ?? .empty, updatedAt: found?.updatedAtMillis ?? 0, schedule: settings.tiers)
        }
    }

    public func listLedger(
        request: Croupier_Loyalty_V1_ListLedgerRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_ListLedgerResponse {
        try await serve(context) { caller in
            try Identifiers.check(request.playerId, "player_id")
            try caller.requireSelfOrViewAll(request.playerId)
            let size = try PageToken.size(request.pageSize)
            let before = try PageToken.decode(request.pageToken)
            try TimeRange.check(from: request.fromMs, to: request.toMs)
            let entries = try await store.ledger(
                playerID: request.playerId, beforeEntryID: before, fromMillis: request.fromMs, toMillis: request.toMs,
                limit: size + 1)
            return PageToken.ledgerPage(entries, size: size)
        }
    }

    // MARK: Administration

    public func verifyBalance(
        request: Croupier_Loyalty_V1_VerifyBalanceRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_VerifyBalanceResponse {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.admin)
            try Identifiers.check(request.playerId, "player_id", required: false)
            let checks = try await store.verify(playerID: request.playerId.isEmpty ? nil : request.playerId)
            let mismatches = checks.filter { !$0.consistent }
            log.line("loyalty_balance_verified", correlationID: caller.correlationID) { w in
                w.field("player_id", request.playerId.isEmpty ? nil : request.playerId)
                w.number("players_checked", checks.count)
                w.number("mismatches", mismatches.count)
            }
            return .with {
                $0.consistent = mismatches.isEmpty
                $0.playersChecked = Int64(checks.count)
                $0.mismatches = mismatches.map(ProtoMapping.check)
            }
        }
    }

    public func rebuildBalance(
        request: Croupier_Loyalty_V1_RebuildBalanceRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_RebuildBalanceResponse {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.admin)
            try Identifiers.check(request.playerId, "player_id")
            let check = try await store.rebuild(playerID: request.playerId)
            log.line("loyalty_balance_rebuilt", correlationID: caller.correlationID) { w in
                w.field("player_id", check.playerID)
                w.number("stored_balance", check.stored.balance)
                w.number("ledger_balance", check.ledger.balance)
                w.bool("changed", !check.consistent)
            }
            let now = try await store.account(request.playerId)
            return .with {
                $0.before = ProtoMapping.check(check)
                $0.after = ProtoMapping.player(
                    request.playerId, now?.account ?? check.ledger, updatedAt: now?.updatedAtMillis ?? 0, schedule: settings.tiers)
                $0.changed = !check.consistent
            }
        }
    }

    public func exportLedger(
        request: Croupier_Loyalty_V1_ExportLedgerRequest, response: RPCWriter<Croupier_Loyalty_V1_LedgerEntry>,
        context: ServerContext
    ) async throws {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.admin)
            try Identifiers.check(request.playerId, "player_id", required: false)
            try TimeRange.check(from: request.fromMs, to: request.toMs)
            var after: Int64 = 0
            var sent = 0
            while true {
                let page = try await store.export(
                    afterEntryID: after, fromMillis: request.fromMs, toMillis: request.toMs,
                    playerID: request.playerId.isEmpty ? nil : request.playerId, limit: 500)
                for e in page { try await response.write(ProtoMapping.entry(e)) }
                sent += page.count
                guard let last = page.last, page.count == 500 else { break }
                after = last.entryID
            }
            log.line("loyalty_ledger_exported", correlationID: caller.correlationID) { w in
                w.number("from_ms", request.fromMs)
                w.number("to_ms", request.toMs)
                w.number("rows", sent)
            }
        }
    }

    public func watchAlerts(
        request: Croupier_Loyalty_V1_WatchAlertsRequest, response: RPCWriter<Croupier_Loyalty_V1_Alert>,
        context: ServerContext
    ) async throws {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.admin)
            guard request.afterOffset >= 0 else { throw LoyaltyError.invalidArgument("after_offset must not be negative") }
            do {
                if request.untilCaughtUp {
                    var after = request.afterOffset
                    while true {
                        let alerts = try await store.alerts.read(after: after, limit: 500)
                        for a in alerts { try await response.write(ProtoMapping.alert(a)) }
                        guard let last = alerts.last else { return }
                        after = last.offset
                    }
                }
                for try await a in store.alerts.follow(after: request.afterOffset) {
                    try await response.write(ProtoMapping.alert(a))
                }
            } catch let e as EventLogError {
                throw RPCError(.outOfRange, e.description)
            }
        }
    }
}

/// `next_page_token`: the last entry id of the page, as decimal text.
enum PageToken {
    static func encode(_ entryID: Int64) -> String { String(entryID) }

    /// A page of ledger entries from `size + 1` fetched: the next page's token if there is more.
    static func ledgerPage(_ entries: [LedgerEntry], size: Int) -> Croupier_Loyalty_V1_ListLedgerResponse {
        .with {
            $0.entries = entries.prefix(size).map(ProtoMapping.entry)
            if entries.count > size, let last = entries.prefix(size).last { $0.nextPageToken = encode(last.entryID) }
        }
    }

    /// A page size of 1–500; 50 for 0.
    static func size(_ requested: Int32) throws -> Int {
        guard (0...500).contains(requested) else {
            throw LoyaltyError.invalidArgument("page_size must be in 1–500 (0 means 50; got \(requested))")
        }
        return requested == 0 ? 50 : Int(requested)
    }

    static func decode(_ token: String) throws -> Int64 {
        if token.isEmpty { return 0 }
        guard let id = Int64(token), id > 0 else { throw LoyaltyError.invalidArgument("page_token '\(token)' is not one this service issued") }
        return id
    }
}

enum TimeRange {
    static func check(from: Int64, to: Int64) throws {
        guard from >= 0, to >= 0 else { throw LoyaltyError.invalidArgument("from_ms and to_ms must not be negative") }
        if to > 0, to <= from { throw LoyaltyError.invalidArgument("to_ms (\(to)) must be after from_ms (\(from))") }
    }
}
