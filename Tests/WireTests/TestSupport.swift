import Foundation
@_exported import TestSupport
import XCTest

/// Runs the reference Python script with `arguments`; fails the test with its output on a non-zero exit.
func runPython(_ script: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let (status, text) = try runToEnd("/usr/bin/env", ["python3", repositoryRoot.appendingPathComponent(script).path] + arguments)
    if status != 0 {
        XCTFail("python3 \(script) \(arguments.joined(separator: " ")) exited \(status):\n\(text)"
            + "\n(the README's test command installs the Python test clients: pip install protobuf grpcio-tools)",
            file: file, line: line)
    }
    return text
}
