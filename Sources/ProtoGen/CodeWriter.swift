import Wire
import Foundation

/// Accumulates generated source with indentation.
struct CodeWriter {
    private(set) var text = ""
    private var indent = 0

    mutating func line(_ s: String = "") {
        text += s.isEmpty ? "\n" : String(repeating: "    ", count: indent) + s + "\n"
    }

    mutating func block(_ opener: String, _ body: (inout CodeWriter) throws -> Void) rethrows {
        line(opener + " {")
        indent += 1
        try body(&self)
        indent -= 1
        line("}")
    }

    /// Writes a proto comment as `///` doc lines.
    mutating func doc(_ comment: String?) {
        guard let comment else { return }
        var lines = comment.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasPrefix(" ") ? String($0.dropFirst()) : String($0)
        }
        while lines.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeLast() }
        for l in lines { line(l.isEmpty ? "///" : "/// " + l) }
    }
}

