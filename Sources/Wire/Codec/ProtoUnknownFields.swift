/// Fields a decoder did not recognise, kept verbatim (tag and value) in the
/// order they arrived and written back after the known fields, so a message
/// passes through a process built from an older schema without losing data.
public struct ProtoUnknownFields: Sendable, Hashable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public var isEmpty: Bool { bytes.isEmpty }

    @usableFromInline
    mutating func append(_ raw: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: raw)
    }
}
