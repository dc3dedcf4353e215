import Foundation
@_exported import LocalPostgres
import Storage

/// Which engine the storage-backed tests run on: SQLite files (the default),
/// or a throwaway PostgreSQL cluster when `CROUPIER_TEST_ENGINE=postgres`
/// (scripts/test runs the Storage and service suites both ways).
public enum TestEngine {
    public static var isPostgres: Bool { ProcessInfo.processInfo.environment["CROUPIER_TEST_ENGINE"] == "postgres" }

    /// A fresh database location for one test: a SQLite file in a new temp
    /// directory, or a new database in this process's PostgreSQL cluster.
    public static func location(_ name: String) throws -> String {
        if isPostgres { return try PostgresCluster.shared().createDatabase() }
        return try makeTemporaryDirectory("db").appendingPathComponent("\(name).sqlite").path
    }

    /// The database kept with `directory`: the SQLite file `<name>.sqlite` in
    /// it, or a PostgreSQL database made on first use and remembered in the
    /// file `<name>.url`, so that reopening the directory reopens the same
    /// database (a restart).
    public static func location(_ name: String, in directory: URL) throws -> String {
        guard isPostgres else { return directory.appendingPathComponent("\(name).sqlite").path }
        let remembered = directory.appendingPathComponent("\(name).url")
        if let url = try? String(contentsOf: remembered, encoding: .utf8) { return url }
        let url = try PostgresCluster.shared().createDatabase()
        try url.write(to: remembered, atomically: true, encoding: .utf8)
        return url
    }
}

/// A test helper's own failure, with what it saw.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Fault injection for both engines: every INSERT into `table` (those whose
/// row satisfies `when`, a predicate over `NEW`, if given) fails with
/// `message` until `removeInsertFailure` (a trigger; PostgreSQL's needs a function).
public func injectInsertFailure(_ db: Database, table: String, name: String, message: String, when condition: String? = nil) async throws {
    try await db.write { tx in
        switch tx.connection.dialect {
        case .sqlite:
            let when = condition.map { " WHEN \($0)" } ?? ""
            try tx.execute("CREATE TRIGGER \(name) BEFORE INSERT ON \(table)\(when) BEGIN SELECT RAISE(ABORT, '\(message)'); END")
        case .postgres:
            let when = condition.map { " WHEN (\($0))" } ?? ""
            try tx.execute("CREATE FUNCTION \(name)() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION '\(message)'; END $$ LANGUAGE plpgsql")
            try tx.execute("CREATE TRIGGER \(name) BEFORE INSERT ON \(table) FOR EACH ROW\(when) EXECUTE FUNCTION \(name)()")
        }
    }
}

public func removeInsertFailure(_ db: Database, table: String, name: String) async throws {
    try await db.write { tx in
        switch tx.connection.dialect {
        case .sqlite:
            try tx.execute("DROP TRIGGER \(name)")
        case .postgres:
            try tx.execute("DROP TRIGGER \(name) ON \(table)")
            try tx.execute("DROP FUNCTION \(name)()")
        }
    }
}
