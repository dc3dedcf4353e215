import Foundation
import Synchronization

/// Log lines from hot paths (the gateway's access log runs on event-loop
/// threads): `write` only appends to a buffer; a background thread writes
/// the buffer to stderr every 20 ms, so no event loop waits on a pipe or a
/// terminal.
final class LogWriter: Sendable {
    static let standardError = LogWriter(fd: 2)

    private let fd: Int32
    private let buffer = Mutex<[UInt8]>([])

    private init(fd: Int32) {
        self.fd = fd
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 0.02)
                flush()
            }
        }
        thread.name = "log-writer"
        thread.start()
    }

    func write(_ line: String) {
        buffer.withLock { b in
            b.append(contentsOf: line.utf8)
            b.append(UInt8(ascii: "\n"))
        }
    }

    /// Writes what is buffered now (also called before the process exits).
    func flush() {
        let bytes = buffer.withLock { b -> [UInt8] in
            defer { b.removeAll(keepingCapacity: true) }
            return b
        }
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + sent, $0.count - sent) }
            if n <= 0 { return }
            sent += n
        }
    }
}
