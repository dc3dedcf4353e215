/// One caller's unit of work inside the writer's current commit group.
///
/// Everything done through a transaction commits together or not at all. A
/// transaction is valid only inside the `Database.write` closure that
/// received it; it must not escape.
public final class Transaction {
    public let connection: SQLConnection
    var afterCommitHooks: [@Sendable () -> Void] = []
    /// Named signals this transaction raises: PostgreSQL notifies them to other processes at commit.
    var notifications: Set<String> = []

    init(connection: SQLConnection) { self.connection = connection }

    @discardableResult
    public func execute(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> Int {
        try connection.execute(sql, arguments)
    }

    /// An INSERT of one row; returns the id `column` got (see `SQLConnection.insert`).
    public func insert(_ sql: String, _ arguments: [any SQLBindable], returning column: String) throws -> Int64 {
        try connection.insert(sql, arguments, returning: column)
    }

    /// Inserts `rows` (each one value per column) with multi-row `VALUES`
    /// statements of up to 900 parameters: one round trip per chunk on
    /// PostgreSQL instead of one per row. `conflict` is appended to each
    /// statement (an `ON CONFLICT …` clause). Returns the rows changed.
    @discardableResult
    public func insertRows(into table: String, columns: [String], _ rows: [[any SQLBindable]], conflict: String = "") throws -> Int {
        guard !columns.isEmpty else { return 0 }
        let perChunk = max(1, 900 / columns.count)
        let tuple = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        var changed = 0
        for start in stride(from: 0, to: rows.count, by: perChunk) {
            let chunk = rows[start..<min(start + perChunk, rows.count)]
            let values = Array(repeating: tuple, count: chunk.count).joined(separator: ", ")
            let sql = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES \(values)" + (conflict.isEmpty ? "" : " " + conflict)
            changed += try connection.execute(sql, chunk.flatMap { $0 })
        }
        return changed
    }

    public func query<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ map: (Row) throws -> T) throws -> [T] {
        try connection.query(sql, arguments, map)
    }

    public func queryFirst<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ map: (Row) throws -> T) throws -> T? {
        try connection.queryFirst(sql, arguments, map)
    }

    /// Waits for, and holds until the transaction ends, the lock on `key`:
    /// on PostgreSQL, other transactions locking it wait (see
    /// `Database.PostgresWrites.keyLocked`). Keys taken mid-transaction must
    /// come after every key a concurrent transaction could hold while
    /// waiting for this one (a fixed order of kinds). SQLite: nothing to do.
    public func lock(_ key: String) throws {
        guard connection.dialect == .postgres else { return }
        try connection.execute("SELECT pg_advisory_xact_lock(\(PGTransactions.lockSQL(key)))")
    }

    /// Raises `signal` once this transaction commits: in this process, and,
    /// for a database's named signal on PostgreSQL, in every process
    /// listening on the database (NOTIFY is delivered at commit, or never).
    public func wake(_ signal: ChangeSignal) {
        afterCommit { signal.signal() }
        if connection.dialect == .postgres, let name = signal.name { notifications.insert(name) }
    }

    /// Runs `hook` once this transaction is durably committed; never if it rolls back.
    /// Used to wake consumers and subscribers of what the transaction wrote.
    public func afterCommit(_ hook: @escaping @Sendable () -> Void) {
        afterCommitHooks.append(hook)
    }
}
