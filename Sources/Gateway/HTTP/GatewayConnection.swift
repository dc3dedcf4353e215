import Glibc
import Wire

/// Receives what the gateway's connections produce (loop thread).
protocol GatewayRequestHandler: AnyObject, Sendable {
    /// A request's headers are complete: answer it on `stream`.
    func handle(_ stream: CallStream)
    /// `old` found an HTTP/1.1 client and gave its socket to `new`, which serves it from now on.
    func connection(_ old: GatewayConnection, handedOverTo new: GatewayConnection)
    /// An HTTP/1.1 request could not be read; it was answered `status` and the connection closed.
    func refused(peer: String, status: Int, reason: String)
}

/// Timeouts and sizes of a client connection (HTTP/2 or HTTP/1.1).
struct HTTPLimits: Sendable {
    var maxConcurrentStreams = 256
    /// HTTP/2: a stream's initial window. HTTP/1.1: request body bytes read ahead of the backend.
    var initialWindowSize = 1 << 20
    var connectionWindowSize = 4 << 20
    var maxFrameSize = 16_384
    /// HTTP/2: the header list. HTTP/1.1: the request line and header section.
    var maxHeaderListBytes = 16 << 10
    var maxMessageBytes = 4 << 20
    var handshakeTimeoutMillis: Int64 = 10_000
    var headerTimeoutMillis: Int64 = 10_000
    var idleTimeoutMillis: Int64 = 300_000
    /// Request and response bytes one connection may make the gateway hold.
    var maxConnectionBufferedBytes = 16 << 20
    /// Socket reads per connection per loop turn (64 KiB each): one client
    /// that never stops sending cannot hold its loop.
    var readsPerTurn = 2
    var flood = FrameFloodGuard.Limits()
}

/// One client connection of the gateway, whatever its HTTP version: the
/// socket (plain or TLS), and the bytes its calls make the gateway hold.
/// Subclasses speak the protocol (`HTTP2Connection`, `HTTP1Connection`);
/// what a `CallStream` asks of its connection, and what the gateway asks of
/// every connection (drain, shed, close), is declared here. Loop thread only.
class GatewayConnection: LoopHandler, @unchecked Sendable {
    // @unchecked: loop-thread only.
    let fd: Int32
    let loop: EventLoop
    let peer: String
    let limits: HTTPLimits
    let transport: ByteTransport
    let handler: GatewayRequestHandler
    private let onClose: @Sendable (GatewayConnection) -> Void
    private let budget: BufferBudget
    /// Who a caller without a token is, for rate limits: its address without the port.
    private(set) lazy var anonymousPrincipal = "anonymous@" + (peer.split(separator: ":").first.map(String.init) ?? "")
    /// Bytes this connection's streams hold (`CallStream.heldBytes`, summed).
    private(set) var bufferedBytes = 0
    /// Bytes taken from the process budget for this connection: at least
    /// `bufferedBytes`, taken and given back in chunks, so a small call
    /// touches no shared counter at all.
    private var budgetTaken = 0
    static let budgetChunk = 16 << 10
    /// The most this connection ever held.
    private var peakBufferedBytes = 0
    let acceptedAt: Int64
    /// When the client last did work (a request, request bytes) or was sent response bytes.
    var lastActivity = LoopClock.nowMillis()
    private(set) var isClosed = false
    var closeReason: String?
    private var flushQueued = false
    private(set) var waitingForWritable = false

    init(
        fd: Int32, loop: EventLoop, peer: String, transport: ByteTransport, limits: HTTPLimits, budget: BufferBudget,
        handler: GatewayRequestHandler, acceptedAt: Int64 = LoopClock.nowMillis(), onClose: @escaping @Sendable (GatewayConnection) -> Void
    ) {
        self.fd = fd
        self.loop = loop
        self.peer = peer
        self.transport = transport
        self.limits = limits
        self.budget = budget
        self.handler = handler
        self.acceptedAt = acceptedAt
        self.onClose = onClose
    }

    // MARK: The protocol's part (overridden)

    /// Calls open now.
    var openStreams: Int { 0 }
    /// "HTTP/2" or "HTTP/1.1".
    var httpVersion: String { fatalError("a GatewayConnection subclass speaks the protocol") }
    /// The stream's request bytes so far were taken: the client may send that many more.
    func consume(stream id: Int32, bytes: Int) {}
    /// Starts the response (`:status` and its fields first); its body is pulled with `CallStream.readBody`.
    func submitResponse(stream id: Int32, headers: [(String, String)], withBody: Bool) {}
    /// The stream has response bytes again after `readBody` said `.wait`.
    func resumeData(stream id: Int32) {}
    /// No call open and no request or response for `millis`.
    func isIdle(forMillis millis: Int64) -> Bool { false }
    /// Graceful shutdown: open calls finish, nothing new starts, then close.
    func beginDrain() {}
    func readable() {}
    /// The socket can take output again: subclasses call this first, then write.
    func writable() {
        waitingForWritable = false
        applyInterest()
    }
    func tick(nowMillis: Int64) {}
    /// Subclasses call this first, then write what they have.
    func flushDeferred() { flushQueued = false }

    /// Closes the socket; the streams still open are told they are gone
    /// (subclasses pass theirs to `closeSocket`).
    func close(_ reason: String?, flushFirst: Bool = false) {}

    // MARK: Shared

    /// Counts bytes a stream holds already (received within the window it gave).
    final func hold(_ n: Int) {
        bufferedBytes += n
        peakBufferedBytes = max(peakBufferedBytes, bufferedBytes)
        if bufferedBytes > budgetTaken, !isClosed {
            let more = bufferedBytes - budgetTaken + Self.budgetChunk
            budget.add(more)
            budgetTaken += more
        }
    }

    /// Takes room for `n` more response bytes, if this connection and the process have it.
    final func reserve(_ n: Int) -> Bool {
        guard bufferedBytes + n <= limits.maxConnectionBufferedBytes, !isClosed else { return false }
        if bufferedBytes + n > budgetTaken {
            let needed = bufferedBytes + n - budgetTaken
            if budget.reserve(needed + Self.budgetChunk) {
                budgetTaken += needed + Self.budgetChunk
            } else if budget.reserve(needed) {
                budgetTaken += needed
            } else {
                return false
            }
        }
        bufferedBytes += n
        peakBufferedBytes = max(peakBufferedBytes, bufferedBytes)
        return true
    }

    final func release(_ n: Int) {
        bufferedBytes -= n
        if budgetTaken - bufferedBytes > 2 * Self.budgetChunk, !isClosed {
            let spare = budgetTaken - bufferedBytes - Self.budgetChunk
            budget.release(spare)
            budgetTaken -= spare
        }
    }

    /// Room to take more request bytes (else credit is withheld until there is).
    final var hasInboundRoom: Bool { bufferedBytes < limits.maxConnectionBufferedBytes && (bufferedBytes < budgetTaken || budget.hasRoom) }

    /// This connection holds all it may: new calls are refused until the client reads.
    final var isOverBudget: Bool { bufferedBytes >= limits.maxConnectionBufferedBytes }

    /// Room may have come back (here or in other connections): credit
    /// withheld and senders waiting for room try again (on the tick).
    final func retryStalled(_ streams: some Sequence<CallStream>) {
        guard bufferedBytes < limits.maxConnectionBufferedBytes else { return }
        for s in streams {
            if s.withholdsCredit { s.returnCreditIfRoom() }
            s.wakeSender()
        }
    }

    /// Output is waiting: `flushDeferred` runs at the end of this loop turn.
    final func flushSoon() {
        guard !flushQueued, !isClosed else { return }
        flushQueued = true
        loop.flushLater(self)
    }

    final func waitForWritable() {
        guard !waitingForWritable else { return }
        waitingForWritable = true
        applyInterest()
    }

    /// What the loop reports of this socket's input (always `.input` for HTTP/2, which reads whatever comes).
    final var readInterest = EventLoop.ReadInterest.input {
        didSet { if readInterest != oldValue { applyInterest() } }
    }

    private func applyInterest() {
        guard !isClosed else { return }
        loop.setInterest(fd, read: readInterest, writable: waitingForWritable)
    }

    /// Writes what it can of `bytes[from...]`; returns how far it got, or nil if the connection closed.
    /// The rest waits for EPOLLOUT.
    final func write(_ bytes: [UInt8], from start: Int = 0) -> Int? {
        var sent = start
        while sent < bytes.count {
            switch bytes.withUnsafeBytes({ transport.write(UnsafeRawBufferPointer(rebasing: $0[sent...])) }) {
            case .bytes(let n): sent += n
            case .wouldBlock:
                waitForWritable()
                return sent
            case .closed(let why):
                close(why)
                return nil
            }
        }
        return sent
    }

    /// Closes the socket, tells `streams` they are gone, gives back the
    /// budget, and reports the close to the gateway.
    final func closeSocket(_ reason: String?, streams: [CallStream]) {
        guard !isClosed else { return }
        isClosed = true
        if closeReason == nil { closeReason = reason }
        transport.close()
        loop.deregisterAndClose(fd)
        for s in streams { s.didClose(reset: true) }
        budget.release(budgetTaken)  // the streams gave back what they held; the connection gives back its share
        budgetTaken = 0
        // A connection that held much gives it back to the system, not only to malloc.
        if peakBufferedBytes >= 1 << 20 { Posix.returnFreeMemory() }
        onClose(self)
    }

    /// Gives the socket to `successor` (same fd, transport and budget), which
    /// the loop calls from now on; this object does nothing more.
    final func handOver(to successor: GatewayConnection) {
        isClosed = true
        loop.replaceHandler(successor)
        handler.connection(self, handedOverTo: successor)
    }

    /// The budget and callbacks a successor on the same socket shares.
    final var shared: (budget: BufferBudget, onClose: @Sendable (GatewayConnection) -> Void) { (budget, onClose) }
}
