/// Metadata to and from its Wire representation.
extension Metadata {
    init(wire entries: [Croupier_Wire_V1_MetadataEntry]) {
        self.init()
        for e in entries {
            switch e.value {
            case .binary(let b)?: add(e.key, binary: b)
            case .text(let t)?: add(e.key, t)
            case nil: add(e.key, "")
            }
        }
    }

    /// Appends one `croupier.wire.v1.MetadataEntry` read in place (key 1,
    /// then text 2 or binary 3): a server reads a call's metadata straight
    /// into its entries, with no message per entry on the way.
    mutating func appendWireEntry(_ reader: inout ProtoReader) throws {
        var key = ""
        var value = Value.text("")
        while let tag = try reader.nextTag() {
            switch (tag.fieldNumber, tag.wireType) {
            case (1, .lengthDelimited): key = try reader.readString(fieldNumber: 1)
            case (2, .lengthDelimited): value = .text(try reader.readString(fieldNumber: 2))
            case (3, .lengthDelimited): value = .binary(try reader.readBytes())
            default: try reader.skipValue(tag)
            }
        }
        append((key, value))
    }

    var wireEntries: [Croupier_Wire_V1_MetadataEntry] {
        entries.map { e in
            Croupier_Wire_V1_MetadataEntry.with {
                $0.key = e.key
                switch e.value {
                case .text(let t): $0.value = .text(t)
                case .binary(let b): $0.value = .binary(b)
                }
            }
        }
    }
}
