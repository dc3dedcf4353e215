import Foundation
import Wire
import XCTest

/// The Swift floor that `croupier bench wire` measures beside Wire (see
/// `EchoFloor`) must be a real echo server, or its figures mean nothing: every
/// message comes back whole and in order, however the bytes arrive.
final class BenchFloorTests: XCTestCase {
    func testTheFloorServerEchoesEveryMessageInOrder() throws {
        for mode in ["sync", "async"] {
            let server = Process()
            server.executableURL = URL(fileURLWithPath: croupier)
            server.arguments = ["bench", "wire-floor", "0", mode]
            let out = Pipe()
            server.standardOutput = out
            let lines = Lines()
            lines.follow(out)
            // Started as `bench wire` starts it: from a thread that blocks
            // SIGTERM and SIGINT (an async program's main thread), whose mask
            // the child inherits.
            var stop = sigset_t(), previous = sigset_t()
            sigemptyset(&stop)
            sigaddset(&stop, SIGTERM)
            sigaddset(&stop, SIGINT)
            pthread_sigmask(SIG_BLOCK, &stop, &previous)
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            try server.run()
            defer {
                kill(server.processIdentifier, SIGKILL)
                server.waitUntilExit()
            }
            XCTAssertTrue(waitFor(lines, "\n", timeout: 10), lines.all)
            let ready = lines.all.split(separator: " ")
            let port = try XCTUnwrap(ready.count == 2 && ready[0] == "READY" ? UInt16(ready[1].trimmingCharacters(in: .whitespacesAndNewlines)) : nil, lines.all)

            // Empty, short and echo-sized messages, one larger than the loop's
            // 64 KiB read buffer, and a few thousand more.
            var messages: [[UInt8]] = [[], [1], Array(repeating: 7, count: 32), (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }]
            messages += (0..<3_000).map { Array(repeating: UInt8($0 % 251), count: 32 + $0 % 7) }
            var stream: [UInt8] = []
            for m in messages {
                withUnsafeBytes(of: UInt32(m.count).bigEndian) { stream.append(contentsOf: $0) }
                stream.append(contentsOf: m)
            }

            let fd = try connectLoopback(port: port)
            defer { close(fd) }
            // Sent in pieces of growing, uneven sizes, so that splits fall inside
            // length prefixes and payloads; read meanwhile on this thread.
            let sender = Thread { [stream] in
                var at = 0, piece = 1
                while at < stream.count {
                    let n = min(piece, stream.count - at)
                    let sent = stream.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + at, n, Int32(MSG_NOSIGNAL)) }
                    if sent <= 0 { return }
                    at += sent
                    piece = min(piece * 3 + 1, 9_000)
                }
            }
            sender.start()
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while received.count < stream.count {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                received += buffer[0..<n]
            }
            XCTAssertEqual(received.count, stream.count, "\(mode): bytes echoed")
            XCTAssertTrue(received == stream, "\(mode): the echo differs from what was sent")

            // `bench wire` ends its floor servers with SIGTERM.
            server.terminate()
            let end = Date().addingTimeInterval(5)
            while server.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.02) }
            XCTAssertFalse(server.isRunning, "\(mode): SIGTERM did not end the floor server")
        }
    }

    /// A blocking socket connected to 127.0.0.1:`port`, with a 5 s read timeout.
    private func connectLoopback(port: UInt16) throws -> Int32 {
        let fd = try Posix.connectBlocking(host: "127.0.0.1", port: port)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }
}
