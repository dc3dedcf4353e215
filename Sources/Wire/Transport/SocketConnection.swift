import Glibc
import Synchronization

/// The byte-moving half of a Wire connection: reads on its loop thread,
/// writes from any thread.
///
/// Writes: callers append frames under a lock. On the loop thread the
/// connection is flushed at the end of the loop iteration, or as soon as
/// `earlyFlushWrites` writes (calls, on the unary paths) or `earlyFlushBytes`
/// are buffered, so the responses produced from one read leave in few `send`s. On another thread
/// the first writer becomes the flusher and sends until the buffer is empty,
/// so frames appended meanwhile leave in the same `send` and a response needs
/// no hop to the loop thread. If the socket is full, the loop finishes the
/// flush when it becomes writable.
class SocketConnection: LoopHandler, @unchecked Sendable {
    // @unchecked: `decoder` is loop-thread only; outbound state is behind `out`.
    private struct Outbound {
        var buffer: [UInt8] = []
        /// The last flushed buffer, emptied: its capacity is reused so a flush
        /// does not cost an allocation.
        var spare: [UInt8] = []
        var flushing = false
        /// The loop will flush at the end of its iteration (written on the loop thread).
        var flushQueued = false
        /// Writes made since the buffer was last taken for sending.
        var writes = 0
        var closed = false
        var closeWhenFlushed = false
    }

    let fd: Int32
    let loop: EventLoop
    let peer: String
    var decoder: FrameDecoder
    private let out = Mutex(Outbound())
    private(set) var isClosed = false  // loop thread

    init(fd: Int32, loop: EventLoop, peer: String, decoder: FrameDecoder) {
        self.fd = fd
        self.loop = loop
        self.peer = peer
        self.decoder = decoder
    }

    // MARK: Writing (any thread)

    /// Appends bytes built by `build` and sends them.
    final func write(_ build: (inout [UInt8]) -> Void) {
        let onLoop = loop.inLoop
        enum Next { case nothing, flushNow, flushLater }
        let next = out.withLock { o -> Next in
            guard !o.closed else { return .nothing }
            build(&o.buffer)
            o.writes += 1
            if o.flushing { return .nothing }
            if onLoop && (o.writes >= SocketConnection.earlyFlushWrites || o.buffer.count >= SocketConnection.earlyFlushBytes) {
                o.flushing = true
                return .flushNow
            }
            if o.flushQueued { return .nothing }
            if onLoop {
                o.flushQueued = true
                return .flushLater
            }
            o.flushing = true
            return .flushNow
        }
        switch next {
        case .nothing: break
        case .flushNow: flush()
        case .flushLater: loop.flushLater(self)
        }
    }

    /// Loop thread, end of an iteration: sends what was written during it.
    final func flushDeferred() {
        let start = out.withLock { o -> Bool in
            o.flushQueued = false
            if o.flushing || o.closed { return false }
            o.flushing = true
            return true
        }
        if start { flush() }
    }

    final func write(_ frame: Frame) { write { frame.encode(into: &$0) } }

    /// Sends what is buffered, then closes (used after GOAWAY with an error).
    final func closeAfterFlush() {
        let closeNow = out.withLock { o -> Bool in
            o.closeWhenFlushed = true
            return !o.flushing && !o.flushQueued
        }
        if closeNow { loop.execute { [self] in close() } }
    }

    private func flush() {
        while true {
            var chunk = out.withLock { o -> [UInt8] in
                if o.buffer.isEmpty {
                    o.flushing = false
                    return []
                }
                var taken: [UInt8] = []
                swap(&taken, &o.buffer)
                o.writes = 0
                swap(&o.buffer, &o.spare)
                return taken
            }
            if chunk.isEmpty {
                if out.withLock({ $0.closeWhenFlushed && !$0.flushing }) { loop.execute { [self] in close() } }
                return
            }
            var sent = 0
            while sent < chunk.count {
                let n = chunk.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
                if n > 0 { sent += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    // Socket full: keep the rest first in line; the loop resumes on EPOLLOUT.
                    chunk.removeFirst(sent)
                    out.withLock { o in o.buffer = chunk + o.buffer }
                    loop.setWriteInterest(fd, true)
                    return
                }
                // The peer is gone; reading will notice and close.
                out.withLock { o in o.buffer = []; o.flushing = false; o.closed = true }
                return
            }
            if chunk.capacity <= Self.maxRetainedBuffer {
                chunk.removeAll(keepingCapacity: true)
                out.withLock { o in if o.spare.capacity < chunk.capacity { o.spare = chunk } }
            }
        }
    }

    /// On the loop thread, output is sent as soon as this many writes (one
    /// per unary call on either side, one per streamed message) or bytes are
    /// buffered, not only at the end of the iteration: the peer starts on the
    /// first calls (or answers) while this side makes the rest. With one send
    /// per iteration, client and server fall into lock-step and throughput
    /// halves. Counted per connection, so a loop serving 4 connections still
    /// sends 16 calls per `send`, not 4; counted in writes, not bytes, so calls
    /// that carry metadata (a gateway's principal) are not sent in smaller
    /// batches. The byte limit sends large messages without delay.
    static let earlyFlushWrites = 16
    static let earlyFlushBytes = 64 << 10

    /// Larger flush buffers (a big message went out) are freed, not kept.
    private static let maxRetainedBuffer = 1 << 20

    // MARK: Loop thread

    func writable() {
        loop.setWriteInterest(fd, false)
        flush()
    }

    func readable() {
        let buffer = loop.readBuffer  // loop thread only, so one buffer serves every connection
        while !isClosed {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n > 0 {
                decoder.append(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                do {
                    try decoder.forEach { frame in
                        try handle(frame)
                        return !isClosed
                    }
                } catch {
                    framesHandled()  // the calls before the bad frame were valid
                    fail(error)
                    return
                }
                framesHandled()
                if n < buffer.count { return }
            } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                close()
                return
            } else if errno != EINTR {
                return
            }
        }
    }

    func tick(nowMillis: Int64) {}

    /// A frame arrived (loop thread); its payload is only valid during the
    /// call. Throwing fails the connection.
    func handle(_ frame: FrameView) throws {}

    /// The frames of one read have been handled (loop thread).
    func framesHandled() {}

    /// A framing or protocol error (loop thread): report and close.
    func fail(_ error: Error) { close() }

    /// Closes the socket now, discarding whatever the kernel still holds to
    /// send (SO_LINGER 0: a reset, not a delayed delivery), from any thread.
    /// For a peer that stopped answering: frames written to it must not
    /// arrive later, when the link comes back, long after their caller gave up.
    final func abort() {
        loop.execute { [self] in
            guard !isClosed else { return }
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            close()
        }
    }

    /// Closes the socket now (loop thread).
    func close() {
        guard !isClosed else { return }
        isClosed = true
        out.withLock { $0.closed = true; $0.buffer = [] }
        loop.deregisterAndClose(fd)
        didClose()
    }

    /// Hook for subclasses: the connection is gone (loop thread).
    func didClose() {}
}
