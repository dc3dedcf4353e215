/// What ids callers may send. Ids are opaque text, but bounded and free of
/// control characters so they are safe in keys, logs and page tokens.
enum Identifiers {
    static func check(_ value: String, _ field: String, required: Bool = true) throws {
        if value.isEmpty {
            if required { throw LoyaltyError.invalidArgument("\(field) is required") }
            return
        }
        guard value.utf8.count <= 128 else { throw LoyaltyError.invalidArgument("\(field) is longer than 128 bytes") }
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw LoyaltyError.invalidArgument("\(field) contains control characters")
        }
    }

    /// Slip ids: 1–64 of [A-Za-z0-9_-]. They are gameplay idempotency keys,
    /// so they can never collide with the `manual:` keys.
    static func checkSlipID(_ value: String) throws {
        let allowed = value.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
        }
        guard (1...64).contains(value.unicodeScalars.count), allowed else { throw LoyaltyError.invalidArgument("slip_id must be 1–64 characters of A-Z a-z 0-9 _ - (got '\(value)')") }
    }
}
