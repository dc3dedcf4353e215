import Wire

/// Domain values ↔ API messages.
enum ProtoMapping {
    static func tier(_ t: Tier?) -> Croupier_Loyalty_V1_Tier {
        switch t {
        case nil: return .unspecified
        case .bronze: return .bronze
        case .silver: return .silver
        case .gold: return .gold
        case .platinum: return .platinum
        }
    }

    static func tier(_ t: Croupier_Loyalty_V1_Tier) -> Tier? {
        switch t {
        case .bronze: return .bronze
        case .silver: return .silver
        case .gold: return .gold
        case .platinum: return .platinum
        default: return nil
        }
    }

    static func alertKind(_ k: Alert.Kind) -> Croupier_Loyalty_V1_AlertKind {
        switch k {
        case .manualRewardFrequency: return .manualRewardFrequency
        case .tierUpgrade: return .tierUpgrade
        case .staffIDMismatch: return .staffIdMismatch
        }
    }

    static func transactionType(_ t: TransactionType) -> Croupier_Loyalty_V1_TransactionType {
        switch t {
        case .gameplay: return .gameplay
        case .manualBonus: return .manualBonus
        case .adjustment: return .adjustment
        }
    }

    static func settings(_ s: GameSettings) -> Croupier_Loyalty_V1_GameSettings {
        .with {
            $0.houseEdgePercent = s.houseEdgePercent
            $0.decisionsPerHour = s.decisionsPerHour
            $0.pointsPerTheoreticalWin = s.pointsPerTheoreticalWin
        }
    }

    static func slip(_ s: RatingSlip) -> Croupier_Loyalty_V1_RatingSlip {
        .with {
            $0.slipId = s.slipID
            $0.playerId = s.playerID
            $0.visitId = s.visitID
            $0.tableId = s.tableID
            $0.gameSettings = settings(s.settings)
            $0.averageBet = s.averageBet
            $0.status = s.status == .open ? .open : .closed
            $0.startedAtMs = s.startedAtMillis
            $0.endedAtMs = s.endedAtMillis ?? 0
            $0.durationSeconds = s.durationSeconds ?? 0
        }
    }

    static func accrual(_ a: Accrual, schedule: TierSchedule) -> Croupier_Loyalty_V1_Accrual {
        .with {
            $0.points = a.entry.points
            $0.balanceBefore = a.entry.before.balance
            $0.balanceAfter = a.entry.after.balance
            $0.tierBefore = tier(a.entry.before.tier)
            $0.tierAfter = tier(a.entry.after.tier)
            $0.lifetimePoints = a.entry.after.lifetimePoints
            $0.tierProgress = schedule.progress(lifetimePoints: a.entry.after.lifetimePoints)
            $0.ledgerEntryId = a.entry.entryID
            $0.replay = a.replay
        }
    }

    static func entry(_ e: LedgerEntry) -> Croupier_Loyalty_V1_LedgerEntry {
        .with {
            $0.entryId = e.entryID
            $0.playerId = e.playerID
            $0.ratingSlipId = e.ratingSlipID ?? ""
            $0.visitId = e.visitID ?? ""
            $0.transactionType = transactionType(e.type)
            $0.points = e.points
            $0.balanceBefore = e.before.balance
            $0.balanceAfter = e.after.balance
            $0.tierBefore = tier(e.before.tier)
            $0.tierAfter = tier(e.after.tier)
            $0.staffId = e.staffID ?? ""
            $0.reason = e.reason ?? ""
            $0.idempotencyKey = e.idempotencyKey
            $0.correlationId = e.correlationID ?? ""
            $0.createdAtMs = e.createdAtMillis
            $0.lifetimePointsAfter = e.after.lifetimePoints
        }
    }

    static func player(_ id: String, _ account: Account, updatedAt: Int64, schedule: TierSchedule) -> Croupier_Loyalty_V1_PlayerLoyalty {
        .with {
            $0.playerId = id
            $0.balance = account.balance
            $0.lifetimePoints = account.lifetimePoints
            $0.tier = tier(account.tier)
            $0.tierProgress = schedule.progress(lifetimePoints: account.lifetimePoints)
            if let next = schedule.next(after: account.tier) {
                $0.nextTier = tier(next)
                $0.pointsToNextTier = max(0, schedule.threshold(next) - account.lifetimePoints)
            }
            $0.updatedAtMs = updatedAt
        }
    }

    static func check(_ c: BalanceCheck) -> Croupier_Loyalty_V1_BalanceCheck {
        .with {
            $0.playerId = c.playerID
            $0.storedBalance = c.stored.balance
            $0.ledgerBalance = c.ledger.balance
            $0.storedLifetimePoints = c.stored.lifetimePoints
            $0.ledgerLifetimePoints = c.ledger.lifetimePoints
            $0.storedTier = tier(c.stored.tier)
            $0.ledgerTier = tier(c.ledger.tier)
        }
    }

    static func alert(_ a: Alert) -> Croupier_Loyalty_V1_Alert {
        .with {
            $0.offset = a.offset
            $0.kind = alertKind(a.kind)
            $0.playerId = a.playerID
            $0.staffId = a.staffID
            $0.message = a.message
            $0.tierBefore = tier(a.tierBefore)
            $0.tierAfter = tier(a.tierAfter)
            $0.correlationId = a.correlationID
            $0.createdAtMs = a.createdAtMillis
        }
    }
}

extension LoyaltyError {
    var rpcError: RPCError {
        switch self {
        case .invalidArgument(let m): return RPCError(.invalidArgument, m)
        case .notFound(let m): return RPCError(.notFound, m)
        case .alreadyExists(let m): return RPCError(.alreadyExists, m)
        case .failedPrecondition(let m): return RPCError(.failedPrecondition, m)
        case .permissionDenied(let m): return RPCError(.permissionDenied, m)
        case .unauthenticated(let m): return RPCError(.unauthenticated, m)
        case .rateLimited(let m, let wait): return SlidingWindow.refusal(m, retryAfterMillis: wait)
        }
    }
}
