/// Why a storage operation failed.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// SQLite reported an error; `code` is the extended result code.
    case sqlite(code: Int32, message: String, sql: String?)
    /// PostgreSQL reported an error; `sqlstate` is its five-character code.
    case postgres(sqlstate: String, message: String, sql: String?)
    /// The database server could not be reached.
    case connection(String)
    /// The file is not a SQLite database, or is one that Croupier did not create.
    case notACroupierDatabase(path: String, reason: String)
    /// The database belongs to another service.
    case wrongOwner(path: String, expected: String, found: String)
    /// The database was migrated by a newer build than this one.
    case schemaTooNew(component: String, found: Int, known: Int)
    /// The database has been closed.
    case closed

    public var description: String {
        switch self {
        case .sqlite(let code, let message, let sql):
            return "SQLite error \(code): \(message)" + (sql.map { " (in: \($0.prefix(120)))" } ?? "")
        case .postgres(let state, let message, let sql):
            return "PostgreSQL error \(state): \(message)" + (sql.map { " (in: \($0.prefix(120)))" } ?? "")
        case .connection(let message):
            return message
        case .notACroupierDatabase(let path, let reason):
            return "\(path) is not a Croupier database: \(reason)"
        case .wrongOwner(let path, let expected, let found):
            return "\(path) belongs to '\(found)', not '\(expected)'"
        case .schemaTooNew(let component, let found, let known):
            return "the \(component) schema is at version \(found) but this build knows only up to \(known); use a newer build"
        case .closed:
            return "the database is closed"
        }
    }

    /// A UNIQUE, CHECK, FOREIGN KEY or NOT NULL rule was broken (SQLITE_CONSTRAINT, SQLSTATE class 23).
    public var isConstraintViolation: Bool {
        switch self {
        case .sqlite(let code, _, _): return code & 0xFF == 19
        case .postgres(let state, _, _): return state.hasPrefix("23")
        default: return false
        }
    }

    /// PostgreSQL cancelled the statement (`PQcancel`).
    var isCancelledStatement: Bool {
        if case .postgres(let state, _, _) = self { return state == "57014" }
        return false
    }

    /// The transaction lost a serialization race (or a deadlock) and can run again.
    var isRetryableConflict: Bool {
        if case .postgres(let state, _, _) = self { return state == "40001" || state == "40P01" }
        return false
    }
}
