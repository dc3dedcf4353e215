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
///
/// Games has one table per back-office id, so the plan works per id: each
/// id is sent once, and when any RGS table sharing it had traffic, the id
/// is archived (kept) and so are all those RGS tables, on both sides.
public struct CleanupPlan: Sendable, Equatable {
    public struct Slice: Sendable, Equatable {
        public var action: CleanupOperation.Action
        public var boIDs: [Int64]
        /// The RGS tables this slice's outcome settles (those with one of its ids).
        public var tables: [RgsTableRow]
    }

    public var toDelete: [RgsTableRow]
    public var toArchive: [RgsTableRow]
    public var slices: [Slice]

    public static func make(
        tables: [RgsTableRow], requiredCurrencies: Set<String>, trafficked: Set<String>, sliceSize: Int = CleanupOperation.maxIDs
    ) throws -> CleanupPlan {
        let foreign = tables.filter { $0.active && !requiredCurrencies.contains($0.currency) }
        let unlinked = foreign.filter { $0.boID <= 0 }.map(\.tableID)
        guard unlinked.isEmpty else {
            throw RPCError(.failedPrecondition, "tables without a back-office id cannot be cleaned on Games: \(unlinked.prefix(10).joined(separator: ", "))")
        }
        let kept = Set(foreign.filter { trafficked.contains($0.tableID) }.map(\.boID))
        let byID = Dictionary(grouping: foreign, by: \.boID)
        var seen: Set<Int64> = []
        let ids = foreign.map(\.boID).filter { seen.insert($0).inserted }
        var slices: [Slice] = []
        for action in [CleanupOperation.Action.delete, .archive] {
            let chosen = ids.filter { kept.contains($0) == (action == .archive) }
            for start in stride(from: 0, to: chosen.count, by: sliceSize) {
                let chunk = Array(chosen[start..<min(start + sliceSize, chosen.count)])
                slices.append(Slice(action: action, boIDs: chunk, tables: chunk.flatMap { byID[$0] ?? [] }))
            }
        }
        return CleanupPlan(
            toDelete: foreign.filter { !kept.contains($0.boID) }, toArchive: foreign.filter { kept.contains($0.boID) }, slices: slices)
    }
}

/// A slice's RGS tables as stored on its outbox row: one `bo_id table_id`
/// line each (table ids hold no whitespace: EstateStore refuses them).
enum SliceTables {
    static func encode(_ tables: [RgsTableRow]) -> String {
        tables.map { "\($0.boID) \($0.tableID)" }.joined(separator: "\n")
    }

    static func decode(_ text: String) -> [(boID: Int64, tableID: String)] {
        text.split(separator: "\n").compactMap { line in
            guard let space = line.firstIndex(of: " "), let bo = Int64(line[..<space]) else { return nil }
            return (bo, String(line[line.index(after: space)...]))
        }
    }
}
