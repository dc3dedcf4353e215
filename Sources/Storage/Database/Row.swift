import CLibPQ
import CSQLite
import Foundation

/// The current row of a query, valid only inside the closure it is passed
/// to: a SQLite statement's row, or a row of a PostgreSQL result (text
/// format). Booleans are stored as integers on both engines.
public struct Row {
    enum Source {
        case sqlite(OpaquePointer)
        case postgres(OpaquePointer, Int32)
    }

    let source: Source

    init(handle: OpaquePointer) { source = .sqlite(handle) }
    init(result: OpaquePointer, row: Int32) { source = .postgres(result, row) }

    public var columnCount: Int {
        switch source {
        case .sqlite(let h): return Int(sqlite3_column_count(h))
        case .postgres(let r, _): return Int(PQnfields(r))
        }
    }

    public func isNull(_ i: Int) -> Bool {
        switch source {
        case .sqlite(let h): return sqlite3_column_type(h, Int32(i)) == SQLITE_NULL
        case .postgres(let r, let row): return PQgetisnull(r, row, Int32(i)) != 0
        }
    }

    public func int64(_ i: Int) -> Int64 {
        switch source {
        case .sqlite(let h): return sqlite3_column_int64(h, Int32(i))
        case .postgres(let r, let row):
            guard let p = PQgetvalue(r, row, Int32(i)) else { return 0 }
            // Integers, and booleans ("t"/"f") where an expression yields one.
            switch p.pointee {
            case CChar(UInt8(ascii: "t")): return 1
            case CChar(UInt8(ascii: "f")): return 0
            default: return strtoll(p, nil, 10)
            }
        }
    }

    public func int(_ i: Int) -> Int { Int(int64(i)) }
    public func bool(_ i: Int) -> Bool { int64(i) != 0 }

    public func double(_ i: Int) -> Double {
        switch source {
        case .sqlite(let h): return sqlite3_column_double(h, Int32(i))
        case .postgres(let r, let row): return PQgetvalue(r, row, Int32(i)).map { strtod($0, nil) } ?? 0
        }
    }

    public func string(_ i: Int) -> String {
        switch source {
        case .sqlite(let h):
            guard let p = sqlite3_column_text(h, Int32(i)) else { return "" }
            let n = Int(sqlite3_column_bytes(h, Int32(i)))
            return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
        case .postgres(let r, let row):
            guard let p = PQgetvalue(r, row, Int32(i)) else { return "" }
            let n = Int(PQgetlength(r, row, Int32(i)))
            return p.withMemoryRebound(to: UInt8.self, capacity: n) { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) }
        }
    }

    public func optionalString(_ i: Int) -> String? { isNull(i) ? nil : string(i) }
    public func optionalInt64(_ i: Int) -> Int64? { isNull(i) ? nil : int64(i) }

    public func blob(_ i: Int) -> [UInt8] {
        switch source {
        case .sqlite(let h):
            let n = Int(sqlite3_column_bytes(h, Int32(i)))
            guard n > 0, let p = sqlite3_column_blob(h, Int32(i)) else { return [] }
            return [UInt8](UnsafeRawBufferPointer(start: p, count: n))
        case .postgres(let r, let row):
            // bytea in text format: "\x" then two hex digits per byte.
            guard let p = PQgetvalue(r, row, Int32(i)) else { return [] }
            let n = Int(PQgetlength(r, row, Int32(i)))
            return p.withMemoryRebound(to: UInt8.self, capacity: n) { Self.hexBytes(UnsafeBufferPointer(start: $0, count: n)) }
        }
    }

    static func hexBytes(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        guard text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x") else { return Array(text) }
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            default: return c &- UInt8(ascii: "A") &+ 10
            }
        }
        var out = [UInt8]()
        out.reserveCapacity((text.count - 2) / 2)
        var i = 2
        while i + 1 < text.count {
            out.append(nibble(text[i]) << 4 | nibble(text[i + 1]))
            i += 2
        }
        return out
    }
}
