/// A JSON reader that only answers whether any object repeats a key.
/// Foundation's parser keeps one of two equal keys silently, and two parsers
/// that keep different ones read one token two ways; a token that repeats a
/// key is refused instead (as the hardened JWT libraries do). Keys compare
/// after escapes are decoded ("a" and "\u0061" are the same key).
enum StrictJSON {
    struct Verdict { let key: String? }

    /// nil when `bytes` is not JSON; else the first repeated key, if any.
    static func repeatedKey(_ bytes: [UInt8]) -> Verdict? {
        var reader = Reader(bytes: bytes)
        do {
            try reader.value(depth: 0)
            reader.skipSpace()
            guard reader.at == bytes.count else { return nil }
            return Verdict(key: nil)
        } catch Reader.Stop.repeated(let key) {
            return Verdict(key: key)
        } catch {
            return nil
        }
    }

    private struct Reader {
        enum Stop: Error { case malformed, repeated(String) }
        let bytes: [UInt8]
        var at = 0

        mutating func skipSpace() {
            while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
        }

        mutating func expect(_ c: UInt8) throws(Stop) {
            skipSpace()
            guard at < bytes.count, bytes[at] == c else { throw .malformed }
            at += 1
        }

        mutating func value(depth: Int) throws(Stop) {
            guard depth < 64 else { throw .malformed }
            skipSpace()
            guard at < bytes.count else { throw .malformed }
            switch bytes[at] {
            case UInt8(ascii: "{"):
                at += 1
                var keys = Set<String>()
                skipSpace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return }
                while true {
                    skipSpace()
                    let key = try string()
                    guard keys.insert(key).inserted else { throw .repeated(key) }
                    try expect(UInt8(ascii: ":"))
                    try value(depth: depth + 1)
                    skipSpace()
                    guard at < bytes.count else { throw .malformed }
                    at += 1
                    if bytes[at - 1] == UInt8(ascii: "}") { return }
                    guard bytes[at - 1] == UInt8(ascii: ",") else { throw .malformed }
                }
            case UInt8(ascii: "["):
                at += 1
                skipSpace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return }
                while true {
                    try value(depth: depth + 1)
                    skipSpace()
                    guard at < bytes.count else { throw .malformed }
                    at += 1
                    if bytes[at - 1] == UInt8(ascii: "]") { return }
                    guard bytes[at - 1] == UInt8(ascii: ",") else { throw .malformed }
                }
            case UInt8(ascii: "\""):
                _ = try string()
            default:
                // A number or a literal: its characters; Foundation checks the form.
                let start = at
                while at < bytes.count, !",]} \t\r\n".utf8.contains(bytes[at]) { at += 1 }
                guard at > start else { throw .malformed }
            }
        }

        /// A string at `at`, escapes decoded.
        mutating func string() throws(Stop) -> String {
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw .malformed }
            at += 1
            var units: [UInt16] = []
            var raw: [UInt8] = []
            func flushRaw() {
                units.append(contentsOf: String(decoding: raw, as: UTF8.self).utf16)
                raw = []
            }
            while at < bytes.count {
                let c = bytes[at]
                at += 1
                if c == UInt8(ascii: "\"") {
                    flushRaw()
                    return String(decoding: units, as: UTF16.self)
                }
                guard c == UInt8(ascii: "\\") else { raw.append(c); continue }
                flushRaw()
                guard at < bytes.count else { throw .malformed }
                let e = bytes[at]
                at += 1
                switch e {
                case UInt8(ascii: "u"):
                    guard at + 4 <= bytes.count, let v = UInt16(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16) else {
                        throw .malformed
                    }
                    units.append(v)
                    at += 4
                case UInt8(ascii: "n"): units.append(0x0A)
                case UInt8(ascii: "t"): units.append(0x09)
                case UInt8(ascii: "r"): units.append(0x0D)
                case UInt8(ascii: "b"): units.append(0x08)
                case UInt8(ascii: "f"): units.append(0x0C)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): units.append(UInt16(e))
                default: throw .malformed
                }
            }
            throw .malformed
        }
    }
}
