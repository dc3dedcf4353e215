/// `IN (?, ?, …)` lists for a set of values. The list is padded with NULLs
/// (which match nothing) to a multiple of `step`, so a statement sees only a
/// few distinct shapes and its prepared form is reused from the cache.
public struct SQLInList: Sendable {
    /// `(?, ?, …)`, to follow `IN`.
    public let sql: String
    public let arguments: [any SQLBindable]

    public init(_ values: [some SQLBindable], step: Int = 100) {
        let count = max(step, (values.count + step - 1) / step * step)
        sql = "(" + Array(repeating: "?", count: count).joined(separator: ", ") + ")"
        arguments = values.map { $0 as any SQLBindable } + Array(repeating: SQLValue.null, count: count - values.count)
    }
}
