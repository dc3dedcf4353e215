import Glibc

/// One JSON line per call: time, correlation id, principal, method, status,
/// duration and bytes in/out. Other log lines of a call carry its
/// correlation id too (`line(_:correlationID:)`). Lines are written by hand:
/// Foundation's JSON and date formatters cost more than the whole call.
struct AccessLog: Sendable {
    let sink: @Sendable (String) -> Void

    struct Entry {
        var correlationID: String
        var principal: String?
        var method: String
        var status: String
        var message: String
        var durationMillis: Double
        var bytesIn: Int
        var bytesOut: Int
        var peer: String
    }

    func call(_ e: Entry) {
        var w = JSONLine()
        w.field("time", Self.timestamp())
        w.field("correlation_id", e.correlationID)
        w.field("principal", e.principal)
        w.field("method", e.method)
        w.field("status", e.status)
        if !e.message.isEmpty { w.field("message", e.message) }
        w.raw("duration_ms", String(Double(Int((e.durationMillis * 1000).rounded())) / 1000))
        w.raw("bytes_in", String(e.bytesIn))
        w.raw("bytes_out", String(e.bytesOut))
        w.field("peer", e.peer)
        sink(w.finish())
    }

    func line(_ text: String, correlationID: String) {
        var w = JSONLine()
        w.field("time", Self.timestamp())
        w.field("correlation_id", correlationID)
        w.field("event", text)
        sink(w.finish())
    }

    /// UTC, RFC 3339 with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var t = tm()
        gmtime_r(&seconds, &t)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}

/// Builds one JSON object on one line.
struct JSONLine {
    private var text = "{"

    mutating func field(_ key: String, _ value: String?) {
        guard let value else { return raw(key, "null") }
        raw(key, Self.quote(value))
    }

    mutating func raw(_ key: String, _ json: String) {
        if text.count > 1 { text += "," }
        text += Self.quote(key) + ":" + json
    }

    func finish() -> String { text + "}" }

    /// A JSON string literal (RFC 8259 escaping).
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
