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
