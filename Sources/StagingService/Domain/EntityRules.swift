import Wire

/// What staging accepts: known entity types, bounded slugs and fields.
public enum EntityRules {
    public static let entityTypes: Set<String> = ["card", "expansion", "product"]
    public static let maxFieldBytes = 16 * 1024
    public static let maxFields = 200

    public static func checkGame(_ slug: String) throws {
        try checkSlug(slug, "game_slug")
    }

    /// An entity's address: its game, its type and its slug.
    public static func checkKey(game: String, type: String, slug: String) throws {
        try checkGame(game)
        try checkType(type)
        try checkSlug(slug)
    }

    /// Slugs: 1–128 of [A-Za-z0-9-_.].
    public static func checkSlug(_ slug: String, _ field: String = "slug") throws {
        guard !slug.isEmpty else { throw RPCError(.invalidArgument, "\(field) is required") }
        let ok = slug.utf8.count <= 128 && slug.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "." || ("A"..."Z").contains($0)
        }
        guard ok else { throw RPCError(.invalidArgument, "\(field) '\(slug.prefix(140))' must be 1–128 of A-Z a-z 0-9 - _ .") }
    }

    public static func checkType(_ type: String) throws {
        guard entityTypes.contains(type) else {
            throw RPCError(.invalidArgument, "unknown entity type '\(type.prefix(64))'; known: \(entityTypes.sorted().joined(separator: ", "))")
        }
    }

    public static func checkFields(_ fields: [String: String], of slug: String) throws {
        guard fields.count <= maxFields else { throw RPCError(.invalidArgument, "\(slug): at most \(maxFields) fields") }
        for (k, v) in fields {
            guard !k.isEmpty, k.utf8.count <= 128 else { throw RPCError(.invalidArgument, "\(slug): field names must be 1–128 bytes") }
            guard v.utf8.count <= maxFieldBytes else {
                throw RPCError(.invalidArgument, "\(slug): field '\(k)' is \(v.utf8.count) bytes (at most \(maxFieldBytes))")
            }
        }
    }

    public static func check(_ e: Croupier_Staging_V1_EntityInput) throws {
        try checkType(e.entityType)
        try checkSlug(e.slug)
        try checkFields(e.fields, of: e.slug)
    }
}

/// Entity fields as stored: the deterministic `FieldMap` encoding.
enum FieldBlob {
    static func encode(_ fields: [String: String]) -> [UInt8] {
        Croupier_Staging_V1_FieldMap.with { $0.values = fields }.serializedBytes()
    }

    static func decode(_ bytes: [UInt8]) -> [String: String] {
        (try? Croupier_Staging_V1_FieldMap(serializedBytes: bytes).values) ?? [:]
    }

    /// The expansion a card belongs to (impact analysis); "" for other types.
    static func expansion(type: String, fields: [String: String]) -> String {
        type == "card" ? fields["expansion"] ?? "" : ""
    }

    static func expansion(type: String, blob: [UInt8]) -> String {
        type == "card" ? decode(blob)["expansion"] ?? "" : ""
    }
}
