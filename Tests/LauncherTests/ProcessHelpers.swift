import Foundation
@_exported import TestSupport
import XCTest

/// The built `croupier` executable, beside the test bundle.
var croupier: String {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("croupier").path
}

/// Output of a child process, collected as it arrives.
final class Lines: @unchecked Sendable {
    // Appended by the reader under `lock`, read by the test thread.
    private var text = ""
    private let lock = NSLock()
    func append(_ s: String) { lock.lock(); text += s; lock.unlock() }
    var all: String { lock.lock(); defer { lock.unlock() }; return text }

    /// Collects what `pipe` delivers.
    func follow(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [self] h in append(String(decoding: h.availableData, as: UTF8.self)) }
    }
}

func waitFor(_ lines: Lines, _ needle: String, timeout: TimeInterval = 20) -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if lines.all.contains(needle) { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return false
}

/// Starts `executable` (by default `croupier`) with `environment` added,
/// collecting its standard output (and its standard error, if asked) as it arrives.
func launch(
    _ arguments: [String], executable: String = croupier, environment: [String: String], withStandardError: Bool = false
) throws -> (Process, Lines) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = withStandardError ? out : FileHandle.nullDevice
    let lines = Lines()
    lines.follow(out)
    try p.run()
    return (p, lines)
}

/// Starts `croupier serve <component> [arguments]` with `environment` added;
/// returns it and the port from its READY line.
func startComponent(_ component: String, environment: [String: String], arguments: [String] = []) throws -> (Process, UInt16) {
    let (p, lines) = try launch(["serve", component] + arguments, environment: environment)
    guard waitFor(lines, "READY \(component)"),
        let port = lines.all.split(separator: "\n").first(where: { $0.hasPrefix("READY \(component)") })
            .flatMap({ $0.split(separator: ":").last }).flatMap({ UInt16($0) })
    else {
        kill(p.processIdentifier, SIGKILL)
        throw NSError(domain: "croupier serve \(component) did not become ready: \(lines.all)", code: 1)
    }
    return (p, port)
}

/// SIGKILLs `process` and waits for it to be gone.
func crash(_ process: Process) {
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
}
