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

    /// Writes the digits in place: no buffer per field, no String. The date
    /// is worked out by arithmetic (`civilDate`), not `gmtime_r`, which
    /// takes glibc's time-zone lock on every call.
    static func appendTimestamp(to out: inout [UInt8]) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        appendTimestamp(seconds: Int64(ts.tv_sec), millis: Int(ts.tv_nsec / 1_000_000), to: &out)
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` for `seconds` since the Unix epoch (UTC).
    static func appendTimestamp(seconds: Int64, millis: Int, to out: inout [UInt8]) {
        let (days, secondOfDay) = seconds.quotientAndRemainder(dividingBy: 86_400)
        let (dayNumber, second) = secondOfDay < 0 ? (days - 1, secondOfDay + 86_400) : (days, secondOfDay)
        let date = civilDate(daysSinceEpoch: dayNumber)
        func digits(_ v: Int, _ width: Int, then separator: UInt8) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var n = v
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(n / divisor % 10))
                n %= divisor
                divisor /= 10
            }
            out.append(separator)
        }
        digits(Int(date.year), 4, then: UInt8(ascii: "-"))
        digits(date.month, 2, then: UInt8(ascii: "-"))
        digits(date.day, 2, then: UInt8(ascii: "T"))
        digits(Int(second / 3600), 2, then: UInt8(ascii: ":"))
        digits(Int(second / 60 % 60), 2, then: UInt8(ascii: ":"))
        digits(Int(second % 60), 2, then: UInt8(ascii: "."))
        digits(millis, 3, then: UInt8(ascii: "Z"))
    }

    /// The proleptic Gregorian date of a day counted from 1970-01-01
    /// (H. Hinnant's `civil_from_days`: 400-year eras of 146,097 days,
    /// years starting on March 1 so the leap day comes last).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468  // days from 0000-03-01
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097  // [0, 146096]
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365  // [0, 399]
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // [0, 365], from March 1
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // [0, 11], March = 0
        let day = Int(dayOfYear - (153 * shiftedMonth + 2) / 5 + 1)
        let month = Int(shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9)
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension JSONLine {
    /// A service's event line: time, service, event, the request it serves
    /// (`RequestContext.current`: correlation id and trace id, when known),
    /// then `fields` (empty values left out).
    public static func event(service: String, _ event: String, _ fields: [(String, String)]) -> String {
        var w = JSONLine()
        w.time("time")
        w.field("service", service)
        w.field("event", event)
        w.request(RequestContext.current)
        for (k, v) in fields where !v.isEmpty { w.field(k, v) }
        return w.finish()
    }

    /// The request's correlation id and trace id, each when known (the
    /// trace id's bytes copied from the traceparent: hex needs no escaping,
    /// and no String is made for it).
    public mutating func request(_ context: RequestContext) {
        if let id = context.correlationID { field("correlation_id", id) }
        if let trace = context.trace {
            appendKey("trace_id")
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: trace.traceIDUTF8)
            bytes.append(UInt8(ascii: "\""))
        }
    }
}
