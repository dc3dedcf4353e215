import Foundation
import Glibc
import Wire

/// `croupier bench wire-floor PORT sync|async`: the echo anchor's protocol
/// (4-byte big-endian length + payload, echoed back) served on Wire's event
/// loop, driven by the anchor's own client. It splits the gap between Wire
/// and the raw echo in two:
///
/// - `sync`: each message is echoed as it is parsed, the way `echo.c` does,
///   but through Wire's loop (epoll, spin, one read buffer, one send per
///   iteration). What it loses to `echo.c` is the I/O layer's cost.
/// - `async`: each message is copied out of the read buffer and handed to an
///   `async` handler, and the response comes back as a new array. The
///   handlers of one read run in one task that prefers the loop, as Wire's
///   `HandlerStarter` runs them. This is the least a server does whose
///   handlers are `async` functions; Wire adds calls, streams, metadata,
///   deadlines and status on top.
///
/// The echo client keeps its requests in flight however the server answers,
/// and it only counts responses, so the two servers are compared like for like.
enum EchoFloor {
    enum Mode: String { case sync, async }

    /// The handler every `async` message goes through; a stored closure, so the call is indirect like a service's.
    static let handler: @Sendable ([UInt8]) async -> [UInt8] = { $0 }

    /// Serves until SIGTERM or SIGINT (`waitForTerminationSignal`, which
    /// takes them even when this process starts with them blocked, as a
    /// child of an async program's main thread does).
    static func serve(port: UInt16, mode: Mode) async throws {
        let (fd, bound) = try Posix.listen(host: "127.0.0.1", port: port)
        let loop = EventLoopGroup.shared.nextLoop()  // `bench wire` runs it with CROUPIER_EVENT_LOOPS=1, like Wire's server
        loop.execute { loop.register(FloorListener(fd: fd, loop: loop, mode: mode)) }
        FileHandle.standardOutput.write(Data("READY \(bound)\n".utf8))
        await waitForTerminationSignal()
    }
}

/// Accepts connections for the floor server (loop thread).
private final class FloorListener: LoopHandler {
    let fd: Int32
    let loop: EventLoop
    let mode: EchoFloor.Mode
    init(fd: Int32, loop: EventLoop, mode: EchoFloor.Mode) { (self.fd, self.loop, self.mode) = (fd, loop, mode) }

    func readable() {
        Posix.acceptAll(self, on: loop, shed: {}) { cfd, _ in loop.register(FloorConnection(fd: cfd, loop: loop, mode: mode)) }
    }
    func writable() {}
    func tick(nowMillis: Int64) {}
    func flushDeferred() {}
}

/// One echo client connection on the floor server. Everything runs on the
/// loop thread: reads, the handlers' task (which prefers the loop and whose
/// handlers never suspend here), and sends.
private final class FloorConnection: LoopHandler, @unchecked Sendable {
    // @unchecked: loop-thread only, including the handlers' task.
    let fd: Int32
    let loop: EventLoop
    let mode: EchoFloor.Mode
    /// Bytes read but not yet a whole message.
    private var input: [UInt8] = []
    /// Responses not yet sent.
    private var output: [UInt8] = []
    private var flushQueued = false
    private var closed = false

    init(fd: Int32, loop: EventLoop, mode: EchoFloor.Mode) { (self.fd, self.loop, self.mode) = (fd, loop, mode) }

    func readable() {
        let buffer = loop.readBuffer
        while !closed {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n > 0 {
                input.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                handleInput()
                if n < buffer.count { return }
            } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                return close()
            } else if errno != EINTR {
                return
            }
        }
    }

    /// Echoes (sync) or hands to the handler (async) every whole message in `input`.
    private func handleInput() {
        var requests: [[UInt8]] = []
        let used = input.withUnsafeBytes { bytes -> Int in
            var at = 0
            while bytes.count - at >= 4 {
                let length = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                guard bytes.count - at - 4 >= length else { break }
                let message = UnsafeRawBufferPointer(rebasing: bytes[(at + 4)..<(at + 4 + length)])
                if mode == .sync { append(message) } else { requests.append(Array(message)) }
                at += 4 + length
            }
            return at
        }
        input.removeFirst(used)
        if mode == .sync { return queueFlush() }
        guard !requests.isEmpty else { return }
        Task.immediate(executorPreference: loop) { [self] in
            for request in requests {
                let response = await EchoFloor.handler(request)
                response.withUnsafeBytes { append($0) }
            }
            queueFlush()
        }
    }

    private func append(_ message: UnsafeRawBufferPointer) {
        withUnsafeBytes(of: UInt32(message.count).bigEndian) { output.append(contentsOf: $0) }
        output.append(contentsOf: message)
    }

    private func queueFlush() {
        guard !flushQueued, !output.isEmpty else { return }
        flushQueued = true
        loop.flushLater(self)
    }

    func flushDeferred() {
        flushQueued = false
        guard !closed, !output.isEmpty else { return }
        let n = output.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        if n > 0 { output.removeFirst(n) }
        if n < 0 && errno != EAGAIN && errno != EINTR { return close() }
        if !output.isEmpty { loop.setWriteInterest(fd, true) }
    }

    func writable() {
        loop.setWriteInterest(fd, false)
        flushDeferred()
    }

    func tick(nowMillis: Int64) {}

    private func close() {
        guard !closed else { return }
        closed = true
        loop.deregisterAndClose(fd)
    }
}
