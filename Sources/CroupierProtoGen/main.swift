import Foundation
import ProtoGen

// croupier-protogen: regenerates the committed Swift code for every .proto in
// the generation manifest. Run from the repository root; needs protoc.
//   croupier-protogen           write generated files
//   croupier-protogen --check   exit 1 if any committed file is stale

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains("--help") || arguments.contains("-h") {
    print("""
        usage: croupier-protogen [--check]
          Generates Swift from protos/ (see Sources/ProtoGen/Manifest.swift) with protoc.
          --check   compare with the committed files instead of writing; exit 1 on any difference
        """)
    exit(0)
}
let check = arguments.contains("--check")
let root = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
var stale: [String] = []
do {
    for target in GenerationTarget.all {
        let dir = root.appendingPathComponent(target.outputDirectory)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for output in try ProtoGenRunner.generate(target, root: root) {
            let url = dir.appendingPathComponent(output.fileName)
            let existing = try? String(contentsOf: url, encoding: .utf8)
            if existing == output.contents { continue }
            if check {
                stale.append("\(target.outputDirectory)/\(output.fileName)")
            } else {
                try output.contents.write(to: url, atomically: true, encoding: .utf8)
                print("wrote \(target.outputDirectory)/\(output.fileName)")
            }
        }
    }
} catch {
    FileHandle.standardError.write("croupier-protogen: \(error)\n".data(using: .utf8)!)
    exit(2)
}
if !stale.isEmpty {
    print("stale generated files (run `swift run croupier-protogen`):\n  " + stale.joined(separator: "\n  "))
    exit(1)
}
