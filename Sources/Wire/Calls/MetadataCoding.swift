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
