/// Why the generator cannot emit code for a descriptor set.
public enum GeneratorError: Error, CustomStringConvertible {
    case unsupported(String)
    case unknownType(String)
    case missingFile(String)

    public var description: String {
        switch self {
        case .unsupported(let s): return "unsupported: \(s)"
        case .unknownType(let s): return "unknown type \(s)"
        case .missingFile(let s): return "file \(s) is not in the descriptor set"
        }
    }
}
