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
        entries.append((key.lowercased(), .text(value)))
    }

    public mutating func add(_ key: String, binary value: [UInt8]) {
        entries.append((key.lowercased(), .binary(value)))
    }

    public mutating func append(_ entry: (key: String, value: Value)) {
        entries.append((entry.key.lowercased(), entry.value))
    }

    /// Replaces every value of `key` with one value.
    public mutating func set(_ key: String, _ value: String) {
        remove(key)
        add(key, value)
    }

    public mutating func remove(_ key: String) {
        let k = key.lowercased()
        entries.removeAll { $0.key == k }
    }

    /// Removes every entry whose key satisfies `predicate`.
    public mutating func removeAll(where predicate: (String) -> Bool) {
        entries.removeAll { predicate($0.key) }
    }

    /// The first text value of `key`.
    public subscript(key: String) -> String? {
        let k = key.lowercased()
        for e in entries where e.key == k { if case .text(let s) = e.value { return s } }
        return nil
    }

    public func values(_ key: String) -> [Value] {
        let k = key.lowercased()
        return entries.filter { $0.key == k }.map(\.value)
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: Value)]> { entries.makeIterator() }

    public static func == (a: Metadata, b: Metadata) -> Bool {
        a.entries.count == b.entries.count
            && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}
