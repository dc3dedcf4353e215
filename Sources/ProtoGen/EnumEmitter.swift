import Wire

/// Emits an open proto3 enum: one case per value plus `unrecognized`.
struct EnumEmitter {
    let access: String
    let comments: [[Int32]: String]

    func emit(_ e: EnumDescriptor, declaredName: String, path: [Int32], into w: inout CodeWriter) {
        // Aliases (several names for one number) keep the first name only.
        var seen: Set<Int32> = []
        var cases: [(name: String, number: Int32, index: Int)] = []
        for (i, v) in e.values.enumerated() where seen.insert(v.number).inserted {
            cases.append((Naming.escaped(Naming.enumCase(v.name, enumName: e.name)), v.number, i))
        }
        w.doc(comments[path])
        w.block("\(access) enum \(declaredName): ProtoEnum") { w in
            for c in cases {
                w.doc(comments[path + [2, Int32(c.index)]])
                w.line("case \(c.name)  // = \(c.number)")
            }
            w.line("/// A value this schema does not name; kept so it round-trips.")
            w.line("case unrecognized(Int32)")
            w.line()
            w.block("\(access) init(protoValue: Int32)") { w in
                w.line("switch protoValue {")
                for c in cases { w.line("case \(c.number): self = .\(c.name)") }
                w.line("default: self = .unrecognized(protoValue)")
                w.line("}")
            }
            w.line()
            w.block("\(access) var protoValue: Int32") { w in
                w.line("switch self {")
                for c in cases { w.line("case .\(c.name): return \(c.number)") }
                w.line("case .unrecognized(let v): return v")
                w.line("}")
            }
        }
    }
}
