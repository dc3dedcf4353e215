/// Call metadata: an ordered multimap of lower-case keys to text or binary
/// values. Keys ending in `-bin` carry bytes, every other key ASCII text,
/// mirroring gRPC metadata so the gateway maps it one to one.
public struct Metadata: Sendable, Equatable, Sequence {
    public enum Value: Sendable, Equatable {
        case text(String)
        case binary([UInt8])
    }

    public private(set) var entries: [(key: String, value: Value)] = []

    public init() {}

    public init(_ pairs: [(String, String)]) {
        for (k, v) in pairs { add(k, v) }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    public mutating func add(_ key: String, _ value: String) {
        entries.append((Self.lowercased(key), .text(value)))
    }

    public mutating func add(_ key: String, binary value: [UInt8]) {
        entries.append((Self.lowercased(key), .binary(value)))
    }

    public mutating func append(_ entry: (key: String, value: Value)) {
        entries.append((Self.lowercased(entry.key), entry.value))
    }

    /// Keys are compared in lower case; one already so (as senders and
    /// lookups almost always write them) is kept without a copy.
    static func lowercased(_ key: String) -> String {
        key.utf8.contains { ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || $0 >= 0x80 } ? key.lowercased() : key
    }

    /// Replaces every value of `key` with one value.
    public mutating func set(_ key: String, _ value: String) {
        remove(key)
        add(key, value)
    }

    public mutating func remove(_ key: String) {
        let k = Self.lowercased(key)
        entries.removeAll { $0.key == k }
    }

    /// Removes every entry whose key satisfies `predicate`.
    public mutating func removeAll(where predicate: (String) -> Bool) {
        entries.removeAll { predicate($0.key) }
    }

    /// The first text value of `key`.
    public subscript(key: String) -> String? {
        let k = Self.lowercased(key)
        for e in entries where e.key == k { if case .text(let s) = e.value { return s } }
        return nil
    }

    public func values(_ key: String) -> [Value] {
        let k = Self.lowercased(key)
        return entries.filter { $0.key == k }.map(\.value)
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: Value)]> { entries.makeIterator() }

    public static func == (a: Metadata, b: Metadata) -> Bool {
        a.entries.count == b.entries.count
            && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}
