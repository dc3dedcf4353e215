import Synchronization

/// W3C Trace Context: the `traceparent` header (`00-<trace-id>-<parent-id>-<flags>`,
/// lowercase hex) that lets one request be followed across processes. The
/// gateway accepts a caller's (or starts one), every hop carries it in Wire
/// metadata, and log lines name its trace id next to the correlation id.
///
/// `current` is the trace of the work running now (`RequestContext.current`'s):
/// the Wire server sets it for a handler whose call carries one, and
/// background jobs set it from what they stored with their work (an import
/// run, a queued request).
public struct TraceContext: Sendable, Equatable {
    public static let header = "traceparent"
    public static let stateHeader = "tracestate"

    /// The header value, version 00 (`00-<trace-id>-<parent-id>-<flags>`):
    /// kept whole, as it arrived when it arrived as version 00, so a Wire
    /// server reading one per call neither copies nor splits it.
    public let traceparent: String

    /// 32 lowercase hex digits, not all zero.
    public var traceID: String { String(traceIDUTF8)! }
    /// The trace id's bytes in the header, for writers that copy them (a log line) rather than make a String.
    public var traceIDUTF8: Substring.UTF8View { utf8(3..<35) }
    /// 16 lowercase hex digits, not all zero: the span that made this context.
    public var spanID: String { part(36..<52) }
    /// 2 hex digits; bit 0 is "sampled".
    public var flags: String { part(53..<55) }

    public static var current: TraceContext? { RequestContext.current.trace }

    /// Parses a `traceparent` value; nil if it is not a valid one (the spec's
    /// rule: then start a new trace). A version above 00 is read by its
    /// version-00 prefix, as the spec asks; version ff is invalid.
    public init?(traceparent: String) {
        // Checked in place: no copy of the header's bytes.
        var header = traceparent
        guard let version00 = header.withUTF8({ Self.check($0) }) else { return nil }
        self.traceparent = version00 ? traceparent : "00" + String(traceparent.utf8.dropFirst(2).prefix(53))!
    }

    /// Nil if `bytes` is not a valid traceparent; else whether it is version 00 exactly (55 bytes).
    private static func check(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return nil }
        let version = bytes[0..<2], trace = bytes[3..<35], span = bytes[36..<52], flags = bytes[53..<55]
        guard version.allSatisfy(Self.isLowerHex), trace.allSatisfy(Self.isLowerHex), span.allSatisfy(Self.isLowerHex),
            flags.allSatisfy(Self.isLowerHex), !version.elementsEqual("ff".utf8)
        else { return nil }
        let isVersion00 = version.elementsEqual("00".utf8)
        if isVersion00 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard bytes[55] == UInt8(ascii: "-") else { return nil }
        }
        guard trace.contains(where: { $0 != UInt8(ascii: "0") }), span.contains(where: { $0 != UInt8(ascii: "0") }) else { return nil }
        return isVersion00
    }

    private init(header: String) { traceparent = header }

    /// A new trace (sampled).
    public static func start() -> TraceContext {
        TraceContext(header: String(unsafeUninitializedCapacity: 55) { out in
            write("00-", into: out, at: 0)
            writeHex(IDSource.next(), into: out, at: 3)
            writeHex(IDSource.next(), into: out, at: 19)
            out[35] = UInt8(ascii: "-")
            writeHex(IDSource.next(), into: out, at: 36)
            write("-01", into: out, at: 52)
            return 55
        })
    }

    /// The same trace, one hop on: a new span id. (The gateway makes one per
    /// call: the header is written once, in place.)
    public func child() -> TraceContext {
        var parent = traceparent
        return TraceContext(header: parent.withUTF8 { parent in
            String(unsafeUninitializedCapacity: 55) { out in
                for i in 0..<36 { out[i] = parent[i] }  // "00-<trace-id>-"
                Self.writeHex(IDSource.next(), into: out, at: 36)
                for i in 52..<55 { out[i] = parent[i] }  // "-<flags>"
                return 55
            }
        })
    }

    /// A caller's `traceparent` continued (a child span, `continued` true), or a new trace if it sent
    /// none or an invalid one (then its `tracestate` must not be passed on).
    public static func continuing(_ header: String?) -> (trace: TraceContext, continued: Bool) {
        guard let caller = header.flatMap(TraceContext.init(traceparent:)) else { return (start(), false) }
        return (caller.child(), true)
    }

    /// Bytes `range` of the header (ASCII: offsets are characters).
    private func part(_ range: Range<Int>) -> String { String(utf8(range))! }

    private func utf8(_ range: Range<Int>) -> Substring.UTF8View {
        let utf8 = traceparent.utf8
        return traceparent[utf8.index(utf8.startIndex, offsetBy: range.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: range.upperBound)].utf8
    }

    private static func isLowerHex(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) }

    /// `word` as 16 lowercase hex digits at `offset`.
    private static func writeHex(_ word: UInt64, into out: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for i in 0..<16 {
            let nibble = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * i)) & 0xF
            out[offset + i] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
        }
    }

    private static func write(_ ascii: StaticString, into out: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for i in 0..<ascii.utf8CodeUnitCount { out[offset + i] = ascii.utf8Start[i] }
    }
}

/// Ids for traces and spans: unique and well spread, cheap enough to make per
/// call (a counter from a random start, mixed by SplitMix64: no system call
/// per id). They identify; they are not secrets. Never zero.
enum IDSource {
    private static let state = Atomic<UInt64>(UInt64.random(in: 1...UInt64.max))

    static func next() -> UInt64 {
        var z = state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return z == 0 ? 1 : z
    }
}
