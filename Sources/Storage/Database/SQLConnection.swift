/// A connection as stores see it, on either engine: statements with `?`
/// parameters (in the SQLite dialect; `Dialect` rewrites them for
/// PostgreSQL) and rows mapped by a closure. Valid only inside the `read` or
/// `write` closure that received it (directly or through a `Transaction`).
public final class SQLConnection {
    enum Backend {
        case sqlite(SQLiteConnection)
        case postgres(PGConnection)
    }

    let backend: Backend

    init(_ backend: Backend) { self.backend = backend }

    public var dialect: Dialect {
        if case .postgres = backend { return .postgres }
        return .sqlite
    }

    /// Runs a statement; returns the number of rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> Int {
        switch backend {
        case .sqlite(let c): return try c.execute(sql, arguments)
        case .postgres(let c): return try c.execute(sql, arguments)
        }
    }

    /// Runs an INSERT of one row and returns the id `column` got: SQLite's
    /// last_insert_rowid (RETURNING costs SQLite an ephemeral table per
    /// statement: 2.5× slower appends), `RETURNING column` on PostgreSQL.
    public func insert(_ sql: String, _ arguments: [any SQLBindable], returning column: String) throws -> Int64 {
        switch backend {
        case .sqlite(let c):
            try c.execute(sql, arguments)
            return c.lastInsertRowID
        case .postgres(let c):
            return try c.queryFirst(sql + " RETURNING " + column, arguments) { $0.int64(0) } ?? 0
        }
    }

    /// Maps every result row.
    public func query<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ map: (Row) throws -> T) throws -> [T] {
        switch backend {
        case .sqlite(let c): return try c.query(sql, arguments, map)
        case .postgres(let c): return try c.query(sql, arguments, map)
        }
    }

    /// Maps the first result row, if any.
    public func queryFirst<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ map: (Row) throws -> T) throws -> T? {
        switch backend {
        case .sqlite(let c): return try c.queryFirst(sql, arguments, map)
        case .postgres(let c): return try c.queryFirst(sql, arguments, map)
        }
    }
}
