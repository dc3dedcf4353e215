/// One caller's unit of work inside the writer's current commit group.
///
/// Everything done through a transaction commits together or not at all. A
/// transaction is valid only inside the `Database.write` closure that
/// received it; it must not escape.
public final class Transaction {
    public let connection: SQLConnection
    var afterCommitHooks: [@Sendable () -> Void] = []

    init(connection: SQLConnection) { self.connection = connection }

    @discardableResult
    public func execute(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> Int {
        try connection.execute(sql, arguments)
    }

    /// An INSERT of one row; returns the id `column` got (see `SQLConnection.insert`).
    public func insert(_ sql: String, _ arguments: [any SQLBindable], returning column: String) throws -> Int64 {
        try connection.insert(sql, arguments, returning: column)
    }

    public func query<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ map: (Row) throws -> T) throws -> [T] {
        try connection.query(sql, arguments, map)
    }

    public func queryFirst<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ map: (Row) throws -> T) throws -> T? {
        try connection.queryFirst(sql, arguments, map)
    }

    /// Runs `hook` once this transaction is durably committed; never if it rolls back.
    /// Used to wake consumers and subscribers of what the transaction wrote.
    public func afterCommit(_ hook: @escaping @Sendable () -> Void) {
        afterCommitHooks.append(hook)
    }
}
