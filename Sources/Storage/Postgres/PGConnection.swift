import CLibPQ
import Foundation

/// One PostgreSQL connection (libpq) with a prepared-statement cache. Calls
/// block, so a connection is owned by one thread at a time: a `PGPool`
/// worker. Parameters are sent and results read in text format; the SQL it
/// receives is already in PostgreSQL's dialect (`Dialect.postgres`).
final class PGConnection {
    let handle: OpaquePointer
    private var prepared: [String: String] = [:]
    /// Wakes a wait for the server; see `result(sent:)`.
    let interrupt = PGInterrupt()
    /// What `PQcancel` needs, made once per connection.
    private let cancelRequest: OpaquePointer?

    init(url: String) throws {
        let url = Self.withDeadPeerDetection(url)
        guard let conn = PQconnectdb(url) else { throw StorageError.connection("libpq could not allocate a connection") }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(conn)
            throw StorageError.connection("cannot connect to PostgreSQL (\(PGConnection.redacted(url))): \(message)")
        }
        handle = conn
        cancelRequest = PQgetCancel(conn)
        // Notices (e.g. "relation already exists, skipping") are not errors; keep them off stderr.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        try executeScript(Self.sessionSettings)
    }

    /// What each session asks of the server, whatever the server's own
    /// configuration: warnings only, and the server's side of dead-peer
    /// detection. A session holds locks (a singleton's, the writers' lock, a
    /// transaction's rows), and while the server believes its client alive,
    /// every other replica waits on them. If this process's host vanishes
    /// (a cut link, a power loss), the server gives up on the session, and
    /// its locks are released, within seconds:
    /// - `tcp_user_timeout`: data it sent stays unacknowledged for 5 s (a
    ///   live peer's kernel acknowledges within a round trip, however busy
    ///   the process). TCP keepalives never probe a socket with data in
    ///   flight, so without this the kernel retransmits for about 15 minutes.
    /// - keepalives after 2 s idle, every second, 3 unanswered: an idle socket.
    /// - `idle_in_transaction_session_timeout`: a client alive but stuck
    ///   inside a transaction for 15 s (stopped, paused). Nothing here holds a
    ///   transaction open while it waits: transaction bodies are synchronous.
    static let sessionSettings = """
        SET client_min_messages = warning; SET tcp_user_timeout = 5000; SET tcp_keepalives_idle = 2; \
        SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3; SET idle_in_transaction_session_timeout = 15000
        """

    deinit {
        if let cancelRequest { PQfreeCancel(cancelRequest) }
        PQfinish(handle)
    }

    /// `url` with TCP keepalives and a send timeout, unless it sets its own:
    /// a connection whose server became unreachable (a cut link, a vanished
    /// host) fails within seconds instead of blocking for the kernel's
    /// retransmission timeout, so its caller (a pool thread, a singleton's
    /// lock) gives up and reconnects.
    static func withDeadPeerDetection(_ url: String) -> String {
        guard !url.contains("keepalives") else { return url }
        let settings = "keepalives=1&keepalives_idle=5&keepalives_interval=2&keepalives_count=3&tcp_user_timeout=10000&connect_timeout=10"
        return url + (url.contains("?") ? "&" : "?") + settings
    }

    /// The URL without its password, for messages.
    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return "the configured URL" }
        if c.password != nil { c.password = "***" }
        return c.string ?? "the configured URL"
    }

    var isBroken: Bool { PQstatus(handle) != CONNECTION_OK }

    /// Runs SQL with no parameters, possibly several statements (DDL, BEGIN/COMMIT).
    func executeScript(_ sql: String) throws {
        let result = result(sent: PQsendQuery(handle, sql))
        defer { PQclear(result) }
        try check(result, sql: sql)
    }

    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> Int {
        let result = try run(sql, arguments)
        defer { PQclear(result) }
        return Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    func query<T>(_ sql: String, _ arguments: [any SQLBindable], _ map: (Row) throws -> T) throws -> [T] {
        let result = try run(sql, arguments)
        defer { PQclear(result) }
        let n = PQntuples(result)
        var out: [T] = []
        out.reserveCapacity(Int(n))
        for i in 0..<n { out.append(try map(Row(result: result, row: i))) }
        return out
    }

    func queryFirst<T>(_ sql: String, _ arguments: [any SQLBindable], _ map: (Row) throws -> T) throws -> T? {
        let result = try run(sql, arguments)
        defer { PQclear(result) }
        return PQntuples(result) > 0 ? try map(Row(result: result, row: 0)) : nil
    }

    /// Prepares `sql` once per connection, then executes it with text parameters.
    private func run(_ sql: String, _ arguments: [any SQLBindable]) throws -> OpaquePointer {
        let name: String
        if let known = prepared[sql] {
            name = known
        } else {
            name = "s\(prepared.count)"
            let result = result(sent: PQsendPrepare(handle, name, Dialect.postgres.translate(sql), 0, nil))
            defer { PQclear(result) }
            try check(result, sql: sql)
            prepared[sql] = name
        }
        let texts: [String?] = arguments.map { Self.text($0.sqlValue) }
        let result = result(sent: withCStrings(texts) { pointers in
            PQsendQueryPrepared(handle, name, Int32(pointers.count), pointers, nil, nil, 0)
        })
        do {
            try check(result, sql: sql)
        } catch {
            PQclear(result)
            throw error
        }
        return result!
    }

    /// What `PQexec` would return for the command just sent (`sent` is the
    /// send call's status): the last result, or the first error. It waits in
    /// `poll` on the socket and on `interrupt`; woken by the interrupt, it
    /// asks the server to cancel the statement (a lock wait ends at once
    /// with SQLSTATE 57014) and goes on waiting for the outcome, which may
    /// still be success if the statement finished first.
    private func result(sent: Int32) -> OpaquePointer? {
        guard sent == 1 else { return nil }
        var kept: OpaquePointer?
        var cancelSent = false
        while true {
            waiting: while PQisBusy(handle) != 0 {
                var fds = [pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0),
                           pollfd(fd: interrupt.fd, events: Int16(POLLIN), revents: 0)]
                guard poll(&fds, 2, -1) >= 0 || errno == EINTR else { break waiting }
                if fds[1].revents != 0 {
                    interrupt.drain()
                    if !cancelSent, let cancelRequest {
                        cancelSent = true
                        var message = [CChar](repeating: 0, count: 256)
                        _ = PQcancel(cancelRequest, &message, Int32(message.count))
                    }
                }
                // A failed read leaves the error for PQgetResult to return.
                if fds[0].revents != 0 && PQconsumeInput(handle) == 0 { break waiting }
            }
            guard let next = PQgetResult(handle) else { return kept }
            if let k = kept, PQresultStatus(k) == PGRES_FATAL_ERROR {
                PQclear(next)
            } else {
                PQclear(kept)
                kept = next
            }
        }
    }

    private func check(_ result: OpaquePointer?, sql: String) throws {
        guard let result else {
            throw StorageError.postgres(sqlstate: "08000", message: String(cString: PQerrorMessage(handle)), sql: sql)
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "XX000"
            let message = String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
            throw StorageError.postgres(sqlstate: state, message: message, sql: sql)
        }
    }

    /// A value in PostgreSQL's text input format; nil is SQL NULL.
    static func text(_ value: SQLValue) -> String? {
        switch value {
        case .integer(let v): return String(v)
        case .real(let v): return "\(v)"
        case .text(let v): return v
        case .blob(let v):
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            var out = [UInt8](repeating: 0, count: 2 + v.count * 2)
            out[0] = UInt8(ascii: "\\")
            out[1] = UInt8(ascii: "x")
            for (i, b) in v.enumerated() {
                out[2 + i * 2] = hex[Int(b >> 4)]
                out[3 + i * 2] = hex[Int(b & 0xF)]
            }
            return String(decoding: out, as: UTF8.self)
        case .null: return nil
        }
    }
}

/// Calls `body` with C strings for `values` (NULL for nil), valid during the call.
private func withCStrings<R>(_ values: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var owned: [UnsafeMutablePointer<CChar>?] = values.map { $0.map { strdup($0) } }
    defer { for p in owned { free(p) } }
    return owned.withUnsafeMutableBufferPointer { buffer in body(buffer.map { $0.map { UnsafePointer($0) } }) }
}
