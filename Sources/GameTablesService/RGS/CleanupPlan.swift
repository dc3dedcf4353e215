import Wire

/// One of the RGS's game tables.
public struct RgsTableRow: Sendable, Equatable {
    public var tableID: String
    public var serverID: String
    public var boID: Int64
    public var currency: String
    public var active: Bool
    public var archivedAtMillis: Int64?

    public init(tableID: String, serverID: String, boID: Int64, currency: String, active: Bool, archivedAtMillis: Int64?) {
        self.tableID = tableID
        self.serverID = serverID
        self.boID = boID
        self.currency = currency
        self.active = active
        self.archivedAtMillis = archivedAtMillis
    }
}

/// What one server's cleanup does (seed 003, box 3), decided without I/O:
/// active tables outside the environment's required currencies go; those
/// with traffic are archived, those without are deleted; Games hears of
/// both in slices of at most 500 back-office ids.
public struct CleanupPlan: Sendable, Equatable {
    public var toDelete: [RgsTableRow]
    public var toArchive: [RgsTableRow]
    public var slices: [(action: CleanupOperation.Action, boIDs: [Int64])]

    public static func == (a: CleanupPlan, b: CleanupPlan) -> Bool {
        a.toDelete == b.toDelete && a.toArchive == b.toArchive
            && a.slices.map { "\($0.action)\($0.boIDs)" } == b.slices.map { "\($0.action)\($0.boIDs)" }
    }

    public static func make(
        tables: [RgsTableRow], requiredCurrencies: Set<String>, trafficked: Set<String>, sliceSize: Int = CleanupOperation.maxIDs
    ) throws -> CleanupPlan {
        let foreign = tables.filter { $0.active && !requiredCurrencies.contains($0.currency) }
        let unlinked = foreign.filter { $0.boID <= 0 }.map(\.tableID)
        guard unlinked.isEmpty else {
            throw RPCError(.failedPrecondition, "tables without a back-office id cannot be cleaned on Games: \(unlinked.prefix(10).joined(separator: ", "))")
        }
        let toArchive = foreign.filter { trafficked.contains($0.tableID) }
        let toDelete = foreign.filter { !trafficked.contains($0.tableID) }
        var slices: [(CleanupOperation.Action, [Int64])] = []
        for (action, rows) in [(CleanupOperation.Action.delete, toDelete), (.archive, toArchive)] {
            let ids = rows.map(\.boID)
            for start in stride(from: 0, to: ids.count, by: sliceSize) {
                slices.append((action, Array(ids[start..<min(start + sliceSize, ids.count)])))
            }
        }
        return CleanupPlan(toDelete: toDelete, toArchive: toArchive, slices: slices)
    }
}
