/// Reads HTTP/1.1 requests out of a connection's bytes (RFC 9112), one
/// event at a time: the head, body bytes, the end. Pure: no I/O.
///
/// It is strict where two readers could disagree about where a request
/// ends (request smuggling): a request with both `Transfer-Encoding` and
/// `Content-Length`, conflicting lengths, a coding other than `chunked`,
/// folded or malformed header lines, bare CR or LF, and a missing or
/// repeated `Host` are refused with the status RFC 9112 names.
struct HTTP1RequestParser {
    /// A request's line and header section.
    struct Head {
        var method: String
        var target: String
        /// 0 or 1: HTTP/1.0 or HTTP/1.1.
        var minorVersion: Int
        /// Field names lowercased, in arrival order; hop-by-hop fields included.
        var fields: [(name: String, value: String)]
        var body: BodyLength
        /// The client may send another request on this connection.
        var keepAlive: Bool
        /// The client waits for `100 Continue` before sending its body.
        var expectsContinue: Bool
        /// The `Connection` field's options, lowercased: `close`, and the names of other hop-by-hop fields.
        var connectionOptions: [String] = []

        func field(_ name: String) -> String? { fields.first { $0.name == name }?.value }
    }

    enum BodyLength: Equatable {
        case fixed(Int)
        case chunked
    }

    /// Why a request cannot be read: the HTTP status to answer (then close).
    struct Refusal: Error, Equatable {
        let status: Int
        let reason: String
    }

    enum Event {
        case head(Head)
        /// Body bytes: this range of the buffer given to `next`.
        case body(Range<Int>)
        /// The request is complete; `reset` before the next one.
        case end
    }

    private enum State: Equatable {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case ended
    }

    private var state = State.head
    /// How far into the current head the search for its end got (so a head arriving in pieces is scanned once).
    private var scanned = 0
    let maxHeadBytes: Int
    /// The longest chunk-size line (with extensions) accepted.
    static let maxChunkLineBytes = 1024

    init(maxHeadBytes: Int) { self.maxHeadBytes = maxHeadBytes }

    /// Between requests: nothing of the next one has been read.
    var awaitingHead: Bool { state == .head }
    /// The head has been read and the body has not ended.
    var inBody: Bool {
        switch state {
        case .head, .ended: return false
        default: return true
        }
    }

    /// Ready for the next request on the connection.
    mutating func reset() {
        state = .head
        scanned = 0
    }

    /// The next event in `bytes[at...]`, moving `at` past what it used; nil
    /// when more bytes are needed (or after `.end`, until `reset`).
    mutating func next(_ bytes: [UInt8], at: inout Int) throws(Refusal) -> Event? {
        while true {
            if let event = try step(bytes, at: &at) { return event }
            if !progressed { return nil }
        }
    }

    /// Set by `step` when it moved on without an event (a chunk-size line, a
    /// chunk's CRLF, a trailer line): `next` steps again.
    private var progressed = false

    private mutating func step(_ bytes: [UInt8], at: inout Int) throws(Refusal) -> Event? {
        progressed = false
        switch state {
        case .ended:
            return nil
        case .head:
            // RFC 9112 §2.2: empty lines before a request line are ignored.
            // (A CR alone may be the start of one: wait for the next byte.)
            while at < bytes.count, bytes[at] == 0x0D {
                guard at + 1 < bytes.count else { return nil }
                guard bytes[at + 1] == 0x0A else { break }
                at += 2
                scanned = 0
            }
            guard let end = headEnd(bytes, from: at) else {
                if bytes.count - at > maxHeadBytes { throw headTooLarge }
                return nil
            }
            guard end - at <= maxHeadBytes else { throw headTooLarge }
            let head = try Self.parseHead(bytes[at..<end])
            at = end + 4
            scanned = 0
            switch head.body {
            case .fixed(let n): state = .fixed(remaining: n)
            case .chunked: state = .chunkSize
            }
            return .head(head)
        case .fixed(let remaining):
            if remaining == 0 {
                state = .ended
                return .end
            }
            let n = min(remaining, bytes.count - at)
            guard n > 0 else { return nil }
            state = .fixed(remaining: remaining - n)
            defer { at += n }
            return .body(at..<at + n)
        case .chunkSize:
            guard let lineEnd = try lineEnd(bytes, from: at, limit: Self.maxChunkLineBytes, what: "a chunk-size line") else { return nil }
            let size = try Self.chunkSize(bytes[at..<lineEnd])
            at = lineEnd + 2
            state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
            progressed = true
            return nil
        case .chunkData(let remaining):
            let n = min(remaining, bytes.count - at)
            guard n > 0 else { return nil }
            state = remaining == n ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            defer { at += n }
            return .body(at..<at + n)
        case .chunkDataEnd:
            guard bytes.count - at >= 2 else { return nil }
            guard bytes[at] == 0x0D, bytes[at + 1] == 0x0A else { throw Refusal(status: 400, reason: "a chunk's data is not followed by CRLF") }
            at += 2
            state = .chunkSize
            progressed = true
            return nil
        case .trailers(let sofar):
            // Trailer fields are read and dropped: nothing the gateway forwards comes from them.
            guard let lineEnd = try lineEnd(bytes, from: at, limit: max(0, maxHeadBytes - sofar), what: "the trailer section") else { return nil }
            let line = bytes[at..<lineEnd]
            at = lineEnd + 2
            if line.isEmpty {
                state = .ended
                return .end
            }
            _ = try Self.field(line)
            state = .trailers(bytes: sofar + line.count + 2)
            progressed = true
            return nil
        }
    }

    // MARK: Pieces

    private var headTooLarge: Refusal { Refusal(status: 431, reason: "the request line and header fields exceed \(maxHeadBytes) bytes") }

    /// Where the head's CRLFCRLF starts, searching from where the last search stopped.
    private mutating func headEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var i = start + max(0, scanned - 3)
        while i + 3 < bytes.count {
            if bytes[i + 3] != 0x0A { i += bytes[i + 3] == 0x0D ? 1 : 4; continue }
            if bytes[i] == 0x0D && bytes[i + 1] == 0x0A && bytes[i + 2] == 0x0D { return i }
            i += 1
        }
        scanned = bytes.count - start
        return nil
    }

    /// The end of the CRLF-terminated line at `start`; nil if it has not all arrived.
    private func lineEnd(_ bytes: [UInt8], from start: Int, limit: Int, what: String) throws(Refusal) -> Int? {
        var i = start
        while i + 1 < bytes.count {
            if bytes[i] == 0x0D {
                guard bytes[i + 1] == 0x0A else { throw Refusal(status: 400, reason: "a bare CR in \(what)") }
                return i
            }
            if bytes[i] == 0x0A { throw Refusal(status: 400, reason: "a bare LF in \(what)") }
            i += 1
            if i - start > limit { throw Refusal(status: 400, reason: "\(what) is longer than \(limit) bytes") }
        }
        return nil
    }

    static func parseHead(_ head: ArraySlice<UInt8>) throws(Refusal) -> Head {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = head.startIndex
        var i = head.startIndex
        while i < head.endIndex {
            if head[i] == 0x0D {
                guard i + 1 < head.endIndex, head[i + 1] == 0x0A else { throw Refusal(status: 400, reason: "a bare CR in the request head") }
                lines.append(head[lineStart..<i])
                i += 2
                lineStart = i
            } else if head[i] == 0x0A {
                throw Refusal(status: 400, reason: "a bare LF in the request head")
            } else {
                i += 1
            }
        }
        lines.append(head[lineStart..<head.endIndex])
        var head = try requestLine(lines[0])
        for line in lines.dropFirst() {
            if line.first == 0x20 || line.first == 0x09 { throw Refusal(status: 400, reason: "folded header lines are not accepted") }
            head.fields.append(try field(line))
        }
        try frame(&head)
        return head
    }

    /// `method SP request-target SP HTTP/1.x`.
    private static func requestLine(_ line: ArraySlice<UInt8>) throws(Refusal) -> Head {
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isToken), !parts[1].isEmpty,
            parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else {
            throw Refusal(status: 400, reason: "malformed request line")
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        let minor: Int
        switch version {
        case "HTTP/1.1": minor = 1
        case "HTTP/1.0": minor = 0
        default:
            guard version.hasPrefix("HTTP/") else { throw Refusal(status: 400, reason: "malformed request line") }
            throw Refusal(status: 505, reason: "\(version) is not served here: use HTTP/1.1 or HTTP/2")
        }
        let target = String(decoding: parts[1], as: UTF8.self)
        guard target.hasPrefix("/") || (target == "*" && parts[0].elementsEqual("OPTIONS".utf8)) else {
            throw Refusal(status: 400, reason: "the request target must be a path (origin form)")
        }
        return Head(
            method: String(decoding: parts[0], as: UTF8.self), target: target, minorVersion: minor, fields: [], body: .fixed(0),
            keepAlive: minor == 1, expectsContinue: false)
    }

    /// `name: OWS value OWS`, the name lowercased.
    static func field(_ line: ArraySlice<UInt8>) throws(Refusal) -> (name: String, value: String) {
        guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex, line[..<colon].allSatisfy(isToken) else {
            throw Refusal(status: 400, reason: "malformed header field line")
        }
        var value = line[(colon + 1)...]
        while let c = value.first, c == 0x20 || c == 0x09 { value = value.dropFirst() }
        while let c = value.last, c == 0x20 || c == 0x09 { value = value.dropLast() }
        guard value.allSatisfy({ $0 >= 0x20 || $0 == 0x09 }), !value.contains(0x7F) else {
            throw Refusal(status: 400, reason: "a header field value holds a control character")
        }
        let name = String(decoding: line[..<colon].map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
        return (name, String(decoding: value, as: UTF8.self))
    }

    /// The body's framing, connection persistence and expectation, from the fields.
    private static func frame(_ head: inout Head) throws(Refusal) {
        var lengths: [Substring] = []
        var codings: [String] = []
        var hosts = 0
        for (name, value) in head.fields {
            switch name {
            case "content-length": lengths += value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
            case "transfer-encoding": codings += value.split(separator: ",").map { $0.trimmingSpaces.lowercased() }
            case "host": hosts += 1
            case "connection":
                head.connectionOptions += value.split(separator: ",").map { $0.trimmingSpaces.lowercased() }
                if head.connectionOptions.contains("close") { head.keepAlive = false }
            case "expect":
                guard value.lowercased() == "100-continue" else { throw Refusal(status: 417, reason: "only 'expect: 100-continue' is understood") }
                head.expectsContinue = head.minorVersion == 1
            default: break
            }
        }
        if head.minorVersion == 1 && hosts != 1 {
            throw Refusal(status: 400, reason: hosts == 0 ? "an HTTP/1.1 request needs a Host field" : "more than one Host field")
        }
        if !codings.isEmpty {
            guard lengths.isEmpty else { throw Refusal(status: 400, reason: "both Transfer-Encoding and Content-Length: refused (RFC 9112 §6.3)") }
            guard head.minorVersion == 1 else { throw Refusal(status: 400, reason: "Transfer-Encoding in an HTTP/1.0 request") }
            guard codings == ["chunked"] else {
                throw Refusal(status: 501, reason: "transfer-coding \(codings.joined(separator: ", ")) is not supported (chunked only)")
            }
            head.body = .chunked
        } else if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }) else { throw Refusal(status: 400, reason: "conflicting Content-Length values") }
            guard (1...15).contains(first.utf8.count), first.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(first) else {
                throw Refusal(status: 400, reason: "malformed Content-Length \(first)")
            }
            head.body = .fixed(n)
        }
    }

    /// A chunk-size line: hex digits, then optional `;extensions` (ignored).
    private static func chunkSize(_ line: ArraySlice<UInt8>) throws(Refusal) -> Int {
        let digits = line.prefix { isHexDigit($0) }
        guard (1...15).contains(digits.count), let size = Int(String(decoding: digits, as: UTF8.self), radix: 16) else {
            throw Refusal(status: 400, reason: "malformed chunk size")
        }
        let rest = line[digits.endIndex...].drop { $0 == 0x20 || $0 == 0x09 }
        guard rest.isEmpty || rest.first == 0x3B else { throw Refusal(status: 400, reason: "malformed chunk size") }
        return size
    }

    private static func isHexDigit(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }

    /// RFC 9110 tchar.
    private static func isToken(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
