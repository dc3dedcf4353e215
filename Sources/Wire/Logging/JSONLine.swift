import Glibc

/// Structured log lines: one JSON object per line, written by hand into a
/// byte buffer because Foundation's JSON and date formatters (and even
/// character-by-character String building) cost more than a whole call.
public struct JSONLine {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]

    public init() { bytes.reserveCapacity(256) }

    public mutating func field(_ key: String, _ value: String?) {
        guard let value else { return raw(key, "null") }
        appendKey(key)
        Self.appendQuoted(value, to: &bytes)
    }

    public mutating func raw(_ key: String, _ json: String) {
        appendKey(key)
        bytes.append(contentsOf: json.utf8)
    }

    public mutating func number(_ key: String, _ value: some BinaryInteger) { raw(key, String(value)) }

    public mutating func bool(_ key: String, _ value: Bool) { raw(key, value ? "true" : "false") }

    public func finish() -> String {
        var line = bytes
        line.append(UInt8(ascii: "}"))
        return String(decoding: line, as: UTF8.self)
    }

    private mutating func appendKey(_ key: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        Self.appendQuoted(key, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    /// A JSON string literal (RFC 8259 escaping).
    public static func quote(_ s: String) -> String {
        var out: [UInt8] = []
        appendQuoted(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `s` as a JSON string literal. Works on UTF-8 bytes: runs
    /// that need no escaping are copied whole; quote, backslash and control
    /// characters are escaped; multi-byte sequences (never below 0x80) pass as is.
    static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            var start = 0
            for i in 0..<utf8.count {
                let b = utf8[i]
                guard b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                appendEscaped(b, to: &out)
                start = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ b: UInt8, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        switch b {
        case 0x0A: out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(UInt8(ascii: "r"))
        case 0x09: out.append(UInt8(ascii: "t"))
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(b)
        default:
            out.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigit(b >> 4), hexDigit(b & 0xF)])
        }
    }

    private static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10 }

    /// The current time, UTC, RFC 3339 with milliseconds, e.g. `2026-11-23T18:40:01.123Z`.
    public mutating func time(_ key: String) {
        appendKey(key)
        bytes.append(UInt8(ascii: "\""))
        Self.appendTimestamp(to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Writes the digits in place: no buffer per field, no String.
    static func appendTimestamp(to out: inout [UInt8]) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var t = tm()
        gmtime_r(&seconds, &t)
        func digits(_ v: Int, _ width: Int, then separator: Character) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var n = v
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(n / divisor % 10))
                n %= divisor
                divisor /= 10
            }
            out.append(separator.asciiValue!)
        }
        digits(Int(t.tm_year) + 1900, 4, then: "-")
        digits(Int(t.tm_mon) + 1, 2, then: "-")
        digits(Int(t.tm_mday), 2, then: "T")
        digits(Int(t.tm_hour), 2, then: ":")
        digits(Int(t.tm_min), 2, then: ":")
        digits(Int(t.tm_sec), 2, then: ".")
        digits(Int(ts.tv_nsec / 1_000_000), 3, then: "Z")
    }
}
