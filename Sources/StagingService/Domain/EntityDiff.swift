/// One entity's difference between production and staging, decided without I/O.
public struct EntityDiff: Sendable, Equatable {
    public enum Change: String, Sendable { case added = "ADDED", changed = "CHANGED", removed = "REMOVED" }

    public var type: String
    public var slug: String
    public var change: Change
    /// field → (old, new); "" stands for absent.
    public var fields: [(field: String, old: String, new: String)]

    public static func == (a: EntityDiff, b: EntityDiff) -> Bool {
        a.type == b.type && a.slug == b.slug && a.change == b.change
            && a.fields.map { "\($0.field)\u{0}\($0.old)\u{0}\($0.new)" } == b.fields.map { "\($0.field)\u{0}\($0.old)\u{0}\($0.new)" }
    }

    /// nil when production and staging agree. `staging` is nil when the
    /// entity is absent or removed in staging; `production` when not deployed.
    static func compare(type: String, slug: String, production: [UInt8]?, staging: [UInt8]?) -> EntityDiff? {
        switch (production, staging) {
        case (nil, nil):
            return nil
        case (nil, let s?):
            return EntityDiff(type: type, slug: slug, change: .added, fields: fieldChanges([:], FieldBlob.decode(s)))
        case (let p?, nil):
            return EntityDiff(type: type, slug: slug, change: .removed, fields: fieldChanges(FieldBlob.decode(p), [:]))
        case (let p?, let s?):
            if p == s { return nil }  // deterministic encoding: equal bytes, equal maps
            let changes = fieldChanges(FieldBlob.decode(p), FieldBlob.decode(s))
            return changes.isEmpty ? nil : EntityDiff(type: type, slug: slug, change: .changed, fields: changes)
        }
    }

    static func fieldChanges(_ old: [String: String], _ new: [String: String]) -> [(field: String, old: String, new: String)] {
        Set(old.keys).union(new.keys).sorted().compactMap { k in
            old[k] == new[k] ? nil : (k, old[k] ?? "", new[k] ?? "")
        }
    }

    var encodedFields: [UInt8] {
        Croupier_Staging_V1_DiffEntry.with {
            $0.fields = fields.map { f in .with { $0.field = f.field; $0.oldValue = f.old; $0.newValue = f.new } }
        }.serializedBytes()
    }
}
