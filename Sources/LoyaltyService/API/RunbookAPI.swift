import Wire

/// The runbooks' read-only lookups (`LoyaltyStore` runbook queries); all need
/// `loyalty:view_all`.
extension LoyaltyAPI {
    public func getRatingSlip(
        request: Croupier_Loyalty_V1_GetRatingSlipRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_RatingSlipView {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.viewAll)
            try Identifiers.checkSlipID(request.slipId)
            guard let view = try await store.slipView(request.slipId) else {
                throw LoyaltyError.notFound("rating slip \(request.slipId) does not exist")
            }
            return Self.view(view)
        }
    }

    public func listRatingSlips(
        request: Croupier_Loyalty_V1_ListRatingSlipsRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_ListRatingSlipsResponse {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.viewAll)
            try Identifiers.check(request.playerId, "player_id", required: false)
            try TimeRange.check(from: request.fromMs, to: request.toMs)
            let size = try PageToken.size(request.pageSize)
            let status: RatingSlip.Status? = switch request.status {
            case .open: .open
            case .closed: .closed
            default: nil
            }
            // The token is the last slip's "started_at/slip_id".
            var before: (Int64, String)?
            if !request.pageToken.isEmpty {
                let parts = request.pageToken.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2, let at = Int64(parts[0]) else {
                    throw LoyaltyError.invalidArgument("page_token '\(request.pageToken.prefix(100))' is not one this service issued")
                }
                before = (at, parts[1])
            }
            let views = try await store.slips(
                playerID: request.playerId.isEmpty ? nil : request.playerId, status: status, fromMillis: request.fromMs,
                toMillis: request.toMs, needsRecoveryOnly: request.needsRecoveryOnly, before: before, limit: size + 1)
            return .with {
                $0.slips = views.prefix(size).map(Self.view)
                if views.count > size, let last = views.prefix(size).last {
                    $0.nextPageToken = "\(last.slip.startedAtMillis)/\(last.slip.slipID)"
                }
            }
        }
    }

    public func searchLedger(
        request: Croupier_Loyalty_V1_SearchLedgerRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_ListLedgerResponse {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.viewAll)
            let filters = [request.correlationId, request.idempotencyKey, request.staffId, request.ratingSlipId]
            guard filters.contains(where: { !$0.isEmpty }) else {
                throw LoyaltyError.invalidArgument("name at least one of correlation_id, idempotency_key, staff_id, rating_slip_id")
            }
            guard filters.allSatisfy({ $0.utf8.count <= 256 }) else { throw LoyaltyError.invalidArgument("a filter is longer than 256 bytes") }
            let size = try PageToken.size(request.pageSize)
            func given(_ s: String) -> String? { s.isEmpty ? nil : s }
            let entries = try await store.searchLedger(
                correlationID: given(request.correlationId), idempotencyKey: given(request.idempotencyKey), staffID: given(request.staffId),
                ratingSlipID: given(request.ratingSlipId), beforeEntryID: try PageToken.decode(request.pageToken), limit: size + 1)
            return PageToken.ledgerPage(entries, size: size)
        }
    }

    public func getManualRewardFrequency(
        request: Croupier_Loyalty_V1_GetManualRewardFrequencyRequest, context: ServerContext
    ) async throws -> Croupier_Loyalty_V1_ManualRewardFrequency {
        try await serve(context) { caller in
            try caller.require(LoyaltyPermission.viewAll)
            try TimeRange.check(from: request.fromMs, to: request.toMs)
            try Identifiers.check(request.staffId, "staff_id", required: false)
            let to = request.toMs > 0 ? request.toMs : store.clock.nowMillis() + 1
            let rows = try await store.manualRewardFrequency(
                fromMillis: request.fromMs, toMillis: to, staffID: request.staffId.isEmpty ? nil : request.staffId)
            return .with {
                $0.staff = rows.map { r in
                    .with {
                        $0.staffId = r.staffID
                        $0.rewards = Int64(r.rewards)
                        $0.points = r.points
                        $0.firstAtMs = r.firstAtMillis
                        $0.lastAtMs = r.lastAtMillis
                        $0.busiestMinute = Int64(r.busiestMinute)
                    }
                }
            }
        }
    }

    static func view(_ v: LoyaltyStore.SlipView) -> Croupier_Loyalty_V1_RatingSlipView {
        .with {
            $0.slip = ProtoMapping.slip(v.slip)
            if let e = v.entry { $0.entry = ProtoMapping.entry(e) }
            $0.needsRecovery = v.needsRecovery
        }
    }
}
