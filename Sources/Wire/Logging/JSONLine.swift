import Glibc

/// Structured log lines: one JSON object per line, written by hand because
/// Foundation's JSON and date formatters cost more than a whole call.
public struct JSONLine {
    private var text = "{"

    public init() {}

    public mutating func field(_ key: String, _ value: String?) {
        guard let value else { return raw(key, "null") }
        raw(key, Self.quote(value))
    }

    public mutating func raw(_ key: String, _ json: String) {
        if text.count > 1 { text += "," }
        text += Self.quote(key) + ":" + json
    }

    public mutating func number(_ key: String, _ value: some BinaryInteger) { raw(key, String(value)) }

    public mutating func bool(_ key: String, _ value: Bool) { raw(key, value ? "true" : "false") }

    public func finish() -> String { text + "}" }

    /// A JSON string literal (RFC 8259 escaping).
    public static func quote(_ s: String) -> String {
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

    /// UTC, RFC 3339 with milliseconds.
    public static func timestamp() -> String {
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
