import CSQLite

/// One SQLite connection with a prepared-statement cache. Not thread-safe:
/// each connection is owned by exactly one thread at a time (the writer
/// thread, or a reader borrowed from the pool).
final class SQLiteConnection {
    let handle: OpaquePointer
    private var cache: [String: SQLiteStatement] = [:]

    /// Opens (creating if needed) and configures for Croupier: WAL, the given
    /// synchronous level, foreign keys, a busy timeout.
    init(path: String, readOnly: Bool, synchronous: Synchronous, busyTimeoutMillis: Int32) throws {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | (readOnly ? 0 : SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            throw StorageError.sqlite(code: rc, message: "\(message): \(path)", sql: nil)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMillis)
        do {
            // Reading the schema first turns "file is not a database" into a clear error.
            try execute("PRAGMA schema_version")
            if !readOnly { try execute("PRAGMA journal_mode=WAL") }
            try execute("PRAGMA synchronous=\(synchronous.rawValue)")
            try execute("PRAGMA foreign_keys=ON")
            if readOnly { try execute("PRAGMA query_only=1") }
        } catch let StorageError.sqlite(code, message, _) where code & 0xFF == 26 {  // SQLITE_NOTADB
            sqlite3_close_v2(db)
            throw StorageError.notACroupierDatabase(path: path, reason: message)
        } catch {
            sqlite3_close_v2(db)
            throw error
        }
    }

    deinit {
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    func error(_ rc: Int32, sql: String?) -> StorageError {
        .sqlite(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = cache[sql] { return cached }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql: sql) }
        let s = SQLiteStatement(handle: stmt, sql: sql, connection: self)
        cache[sql] = s
        return s
    }

    /// Runs SQL that may contain several statements and no parameters (DDL, pragmas).
    func executeScript(_ sql: String) throws {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, sql: sql) }
    }

    // MARK: Queries (the API Transaction and readers expose)

    /// Runs a statement; returns the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> Int {
        let s = try statement(sql)
        try s.bind(arguments)
        defer { s.reset() }
        while try s.step() {}
        return Int(sqlite3_changes(handle))
    }

    /// Maps every result row.
    func query<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ map: (Row) throws -> T) throws -> [T] {
        let s = try statement(sql)
        try s.bind(arguments)
        defer { s.reset() }
        var out: [T] = []
        while try s.step() { out.append(try map(Row(handle: s.handle))) }
        return out
    }

    /// Maps the first result row, if any.
    func queryFirst<T>(_ sql: String, _ arguments: [any SQLBindable] = [], _ map: (Row) throws -> T) throws -> T? {
        let s = try statement(sql)
        try s.bind(arguments)
        defer { s.reset() }
        return try s.step() ? map(Row(handle: s.handle)) : nil
    }
}

extension SQLiteConnection {
    /// The rowid of the most recent successful INSERT on this connection.
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
}

/// `PRAGMA synchronous` levels. FULL (the default) fsyncs the WAL at every
/// commit, so a committed transaction survives power loss.
public enum Synchronous: String, Sendable {
    case off = "OFF"
    case normal = "NORMAL"
    case full = "FULL"
}
