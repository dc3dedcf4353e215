import Synchronization

/// The one place where the two engines' SQL differs. Stores and migrations
/// are written once, in the SQLite dialect restricted to what PostgreSQL can
/// also run after these rewrites:
///
/// - parameters `?` and `?N` become `$n` / `$N`;
/// - `INSERT OR IGNORE` becomes `INSERT … ON CONFLICT DO NOTHING`;
/// - two-argument `max(a, b)` / `min(a, b)` become `GREATEST` / `LEAST`;
/// - the column name `offset` (lower case; the keyword is written `OFFSET`) is quoted;
/// - SQLite's index hint `INDEXED BY name` goes (PostgreSQL's planner chooses);
/// - `? IS NULL` (an optional filter) becomes `CAST($n AS TEXT) IS NULL`:
///   PostgreSQL cannot otherwise tell the parameter's type;
/// - in migrations: `INTEGER PRIMARY KEY [AUTOINCREMENT]` becomes an identity
///   column, `INTEGER` → `BIGINT`, `REAL` → `DOUBLE PRECISION`, `BLOB` → `BYTEA`,
///   and `WITHOUT ROWID` goes.
///
/// What it cannot rewrite (SQLite-only functions, `rowid`, integers used as
/// booleans) must not appear in store SQL; the PostgreSQL test runs find it.
public enum Dialect: Sendable {
    case sqlite
    case postgres

    private static let cache = Mutex<[String: String]>([:])


    /// `sql` in this dialect (translations are cached).
    /// Appended to a SELECT whose rows the transaction will update, so
    /// concurrent transactions (other replicas' receivers) pass over rows
    /// one of them already took instead of waiting for it and then losing a
    /// serialization race. SQLite has one writer: nothing to add.
    public var skippingLockedRows: String {
        switch self {
        case .sqlite: ""
        case .postgres: " FOR UPDATE SKIP LOCKED"
        }
    }

    public func translate(_ sql: String, schema: Bool = false) -> String {
        guard self == .postgres else { return sql }
        let key = (schema ? "S" : "Q") + sql
        if let hit = Self.cache.withLock({ $0[key] }) { return hit }
        let out = PostgresRewriter(sql, schema: schema).rewrite()
        Self.cache.withLock { $0[key] = out }
        return out
    }
}

/// A small lexer and token rewriter for `Dialect.postgres`.
struct PostgresRewriter {
    enum Token: Equatable {
        case word(String)
        case parameter(Int?)  // ?N, or ? (numbered in order)
        case verbatim(String)  // strings, quoted identifiers, comments, whitespace, punctuation

        var upperWord: String? { if case .word(let w) = self { return w.uppercased() } else { return nil } }
        var isSpace: Bool { if case .verbatim(let v) = self { return v.allSatisfy(\.isWhitespace) } else { return false } }
    }

    let tokens: [Token]
    let schema: Bool

    init(_ sql: String, schema: Bool) {
        self.schema = schema
        tokens = Self.lex(Array(sql.utf8))
    }

    static func lex(_ s: [UInt8]) -> [Token] {
        var out: [Token] = []
        var i = 0
        func isWordStart(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 }
        func isWord(_ c: UInt8) -> Bool { isWordStart(c) || (c >= 48 && c <= 57) }
        func text(_ a: Int, _ b: Int) -> String { String(decoding: s[a..<b], as: UTF8.self) }
        while i < s.count {
            let c = s[i]
            let start = i
            if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                i += 1
                while i < s.count {
                    if s[i] == c {
                        if i + 1 < s.count && s[i + 1] == c { i += 2; continue }  // doubled quote
                        i += 1
                        break
                    }
                    i += 1
                }
                out.append(.verbatim(text(start, i)))
            } else if c == UInt8(ascii: "-"), i + 1 < s.count, s[i + 1] == UInt8(ascii: "-") {
                while i < s.count && s[i] != UInt8(ascii: "\n") { i += 1 }
                out.append(.verbatim(text(start, i)))
            } else if c == UInt8(ascii: "?") {
                i += 1
                while i < s.count && s[i] >= 48 && s[i] <= 57 { i += 1 }
                out.append(.parameter(i > start + 1 ? Int(text(start + 1, i)) : nil))
            } else if isWordStart(c) {
                while i < s.count && isWord(s[i]) { i += 1 }
                out.append(.word(text(start, i)))
            } else {
                i += 1
                out.append(.verbatim(text(start, i)))
            }
        }
        return out
    }

    func rewrite() -> String {
        var out: [Token] = []
        var nextParameter = 1
        var onConflictPending = false
        var i = 0
        /// The index of the next non-space token after `j`.
        func next(_ j: Int) -> Int {
            var k = j + 1
            while k < tokens.count && tokens[k].isSpace { k += 1 }
            return k
        }
        /// Before RETURNING (which follows a space already written) or at the statement's end.
        func flushConflict(beforeReturning: Bool = false) {
            if onConflictPending { out.append(.verbatim(beforeReturning ? "ON CONFLICT DO NOTHING " : " ON CONFLICT DO NOTHING")) }
            onConflictPending = false
        }
        while i < tokens.count {
            let t = tokens[i]
            switch t {
            case .parameter(let n):
                let name: String
                if let n {
                    name = "$\(n)"
                } else {
                    name = "$\(nextParameter)"
                    nextParameter += 1
                }
                let isNullTest = tokens.indices.contains(next(i)) && tokens[next(i)].upperWord == "IS"
                    && tokens.indices.contains(next(next(i))) && tokens[next(next(i))].upperWord == "NULL"
                out.append(.verbatim(isNullTest ? "CAST(\(name) AS TEXT)" : name))
            case .word(let w):
                let upper = w.uppercased()
                if upper == "INSERT", tokens.indices.contains(next(i)), tokens[next(i)].upperWord == "OR",
                    tokens.indices.contains(next(next(i))), tokens[next(next(i))].upperWord == "IGNORE"
                {
                    out.append(.word("INSERT"))
                    onConflictPending = true
                    i = next(next(i)) + 1
                    continue
                }
                if upper == "RETURNING" { flushConflict(beforeReturning: true) }
                if upper == "INDEXED", tokens.indices.contains(next(i)), tokens[next(i)].upperWord == "BY" {
                    i = next(next(i)) + 1  // drops "INDEXED BY name"
                    continue
                }
                if (upper == "MAX" || upper == "MIN"), tokens.indices.contains(next(i)), tokens[next(i)] == .verbatim("("),
                    topLevelCommas(from: next(i)) > 0
                {
                    out.append(.word(upper == "MAX" ? "GREATEST" : "LEAST"))
                } else if w == "offset" {
                    out.append(.verbatim("\"offset\""))
                } else if schema, let replaced = schemaWord(upper, at: i, next: next) {
                    out.append(.verbatim(replaced.text))
                    i = replaced.resume
                    continue
                } else {
                    out.append(t)
                }
            case .verbatim(let v):
                if v == ";" { flushConflict() }
                out.append(t)
            }
            i += 1
        }
        flushConflict()
        return out.map {
            switch $0 {
            case .word(let w): return w
            case .verbatim(let v): return v
            case .parameter: return ""
            }
        }.joined()
    }

    /// Commas at depth one inside the parentheses opening at `open`.
    func topLevelCommas(from open: Int) -> Int {
        var depth = 0
        var commas = 0
        for t in tokens[open...] {
            guard case .verbatim(let v) = t else { continue }
            if v == "(" { depth += 1 } else if v == ")" {
                depth -= 1
                if depth == 0 { break }
            } else if v == ",", depth == 1 { commas += 1 }
        }
        return commas
    }

    /// DDL types and clauses; returns the text and the token index to resume at.
    func schemaWord(_ upper: String, at i: Int, next: (Int) -> Int) -> (text: String, resume: Int)? {
        func word(_ j: Int) -> String? { tokens.indices.contains(j) ? tokens[j].upperWord : nil }
        switch upper {
        case "INTEGER":
            let p = next(i)
            if word(p) == "PRIMARY", word(next(p)) == "KEY" {
                var end = next(p)
                if word(next(end)) == "AUTOINCREMENT" { end = next(end) }
                return ("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", end + 1)
            }
            return ("BIGINT", i + 1)
        case "REAL": return ("DOUBLE PRECISION", i + 1)
        case "BLOB": return ("BYTEA", i + 1)
        case "WITHOUT":
            if word(next(i)) == "ROWID" { return ("", next(i) + 1) }
            return nil
        default: return nil
        }
    }
}
