import Synchronization
import Wire

/// One HTTP/2 request stream on the gateway. Loop thread only: the HTTP/2
/// callbacks and the call's forwarder (a unary forward's completions, or a
/// streaming call's task, which prefers the loop as its executor) are the
/// only users.
///
/// Inbound: DATA bytes become gRPC messages in `requests`; HTTP/2 credit is
/// returned as the forwarder takes them, so a client cannot make the gateway
/// buffer more than about `maxQueuedRequestBytes` plus one window.
/// Outbound: response bytes wait in `out` until nghttp2 asks for them;
/// `sendMessage` suspends while more than `maxQueuedResponseBytes` wait, so
/// a client that reads slowly slows the backend instead of growing memory.
final class HTTP2Stream: @unchecked Sendable {
    static let maxQueuedRequestBytes = 1 << 20
    static let maxQueuedResponseBytes = 256 << 10

    enum Response { case none, started, ended }

    let id: Int32
    unowned let connection: HTTP2Connection
    /// Request header fields in arrival order (pseudo-headers included).
    var requestHeaders: [(name: String, value: String)] = []
    let requests: MessageQueue
    var deframer: GRPCDeframer
    private(set) var response = Response.none
    /// Set when the forwarder starts; called if the client resets the stream.
    var onReset: (() -> Void)?
    /// Set by a forwarder that takes the request whole (a unary call, no
    /// task): called once when the request ends, with its messages (at most
    /// two are kept: enough to tell "one" from "more"), or why it failed.
    /// Messages then bypass `requests`, and their credit is returned at once.
    var onWholeRequest: ((Result<[[UInt8]], RPCError>) -> Void)?
    private var wholeRequest: [[UInt8]] = []
    let startedAt = LoopClock.nowMillis()

    /// Bytes of request header fields so far; nil once the headers are complete.
    var headerBytes: Int? = 0
    // Inbound accounting: messages not yet taken, DATA bytes not yet credited.
    private var queuedRequestBytes = 0
    private var unreturnedCredit = 0

    // Outbound.
    private var out: [UInt8] = []
    private var outOffset = 0
    private var pendingTrailers: [(String, String)]?
    private(set) var dataDeferred = false
    private var drainWaiter: CheckedContinuation<Void, Error>?
    private(set) var closed = false
    var bytesIn = 0
    var bytesOut = 0

    /// Streams alive in this process (open, or not yet released): a leak shows here.
    static let alive = Atomic<Int>(0)

    deinit { Self.alive.subtract(1, ordering: .relaxed) }

    init(id: Int32, connection: HTTP2Connection, maxMessageBytes: Int) {
        Self.alive.add(1, ordering: .relaxed)
        self.id = id
        self.connection = connection
        deframer = GRPCDeframer(maxMessageBytes: maxMessageBytes)
        requests = MessageQueue()
        requestHeaders.reserveCapacity(12)  // a gRPC request's usual fields, without regrowing
    }

    var loop: EventLoop { connection.loop }

    // MARK: Inbound (HTTP/2 callbacks)

    /// DATA arrived: split into messages. Its bytes are credited back to the
    /// client at once while the messages waiting for the forwarder stay under
    /// `maxQueuedRequestBytes`; past that, credit waits until they are taken.
    func received(_ bytes: UnsafeRawBufferPointer) throws {
        bytesIn += bytes.count
        for m in try deframer.append(bytes) {
            if m.compressed { throw RPCError(.unimplemented, "compressed messages are not supported (grpc-encoding identity only)") }
            if onWholeRequest != nil {
                if wholeRequest.count < 2 { wholeRequest.append(m.payload) }
                continue
            }
            queuedRequestBytes += m.payload.count + 5
            requests.push(m.payload)
        }
        unreturnedCredit += bytes.count
        returnCreditIfRoom()
    }

    /// The client half-closed (END_STREAM).
    func requestEnded() {
        if deframer.hasPartialMessage {
            requestFailed(RPCError(.internal, "the request ended inside a gRPC message"))
        } else if let whole = onWholeRequest {
            onWholeRequest = nil
            whole(.success(wholeRequest))
            wholeRequest = []
        } else {
            requests.finish()
        }
    }

    /// The request cannot be read on (bad framing, oversized or compressed message).
    func requestFailed(_ error: Error) {
        if let whole = onWholeRequest {
            onWholeRequest = nil
            wholeRequest = []
            whole(.failure((error as? RPCError) ?? RPCError(.internal, "\(error)")))
        } else {
            requests.abort(error)
        }
    }

    private func returnCreditIfRoom() {
        guard queuedRequestBytes <= Self.maxQueuedRequestBytes, unreturnedCredit > 0 else { return }
        connection.consume(stream: id, bytes: unreturnedCredit)
        unreturnedCredit = 0
    }

    func nextRequest() async throws -> [UInt8]? {
        let m = try await requests.next()
        if let m {
            queuedRequestBytes -= m.count + 5
            returnCreditIfRoom()
        }
        return m
    }

    // MARK: Outbound (forwarder)

    /// Starts the response: `:status 200`, the gRPC content type and `headers`.
    func sendHeaders(_ headers: [(String, String)]) {
        guard response == .none, !closed else { return }
        response = .started
        connection.submitResponse(stream: id, headers: [(":status", "200"), ("content-type", "application/grpc")] + headers, withBody: true)
    }

    /// Queues one length-prefixed message; false if the client went away.
    /// A unary response is queued whole: it is bounded by the message size limit.
    @discardableResult
    func queueMessage(_ payload: [UInt8]) -> Bool {
        guard !closed, response == .started else { return false }
        GRPCDeframer.appendPrefixed(payload, to: &out)
        bytesOut += payload.count + 5
        resumeData()
        return true
    }

    /// Queues one length-prefixed message; waits while the client is far behind.
    func sendMessage(_ payload: [UInt8]) async throws {
        guard queueMessage(payload) else { throw RPCError(.cancelled, "the client went away") }
        while !closed && out.count - outOffset > Self.maxQueuedResponseBytes {
            try await withCheckedThrowingContinuation { drainWaiter = $0 }
        }
        if closed { throw RPCError(.cancelled, "the client went away") }
    }

    /// Ends the call with trailers; a trailers-only response if nothing was sent.
    func finish(trailers: [(String, String)], headers: [(String, String)] = []) {
        guard response != .ended, !closed else { return }
        if response == .none {
            response = .ended
            connection.submitResponse(
                stream: id, headers: [(":status", "200"), ("content-type", "application/grpc")] + headers + trailers, withBody: false)
            return
        }
        response = .ended
        pendingTrailers = trailers
        resumeData()
    }

    /// A plain HTTP answer for requests that are not gRPC (e.g. 415), or `/metrics`.
    func respondHTTP(status: Int, contentType: String, body: [UInt8]) {
        guard response == .none, !closed else { return }
        response = .ended
        out.append(contentsOf: body)
        pendingTrailers = nil
        connection.submitResponse(
            stream: id, headers: [(":status", String(status)), ("content-type", contentType), ("content-length", String(body.count))],
            withBody: !body.isEmpty)
    }

    private func resumeData() {
        if dataDeferred {
            dataDeferred = false
            connection.resumeData(stream: id)
        }
    }

    // MARK: nghttp2 pulls response bytes

    enum Chunk {
        case bytes(Int, end: Bool, trailers: [(String, String)]?)
        case wait
    }

    /// Copies up to `capacity` bytes of response body into `buffer`.
    func readBody(into buffer: UnsafeMutableRawBufferPointer) -> Chunk {
        let available = out.count - outOffset
        let n = min(available, buffer.count)
        if n > 0 {
            out.withUnsafeBytes { src in buffer.baseAddress!.copyMemory(from: src.baseAddress! + outOffset, byteCount: n) }
            outOffset += n
            if outOffset == out.count {
                out.removeAll(keepingCapacity: out.capacity <= 1 << 20)
                outOffset = 0
            }
            if out.count - outOffset <= Self.maxQueuedResponseBytes / 2, let w = drainWaiter {
                drainWaiter = nil
                w.resume()
            }
        }
        let drained = out.count == outOffset
        if drained && response == .ended {
            defer { pendingTrailers = nil }
            return .bytes(n, end: true, trailers: pendingTrailers)
        }
        if n == 0 {
            dataDeferred = true
            return .wait
        }
        return .bytes(n, end: false, trailers: nil)
    }

    /// The stream is gone (completed, reset, or the connection closed).
    func didClose(reset: Bool) {
        guard !closed else { return }
        closed = true
        requests.abort(RPCError(.cancelled, "the client cancelled the call"))
        onWholeRequest = nil  // it holds the forwarder, which holds this stream
        wholeRequest = []
        if let w = drainWaiter {
            drainWaiter = nil
            w.resume(throwing: RPCError(.cancelled, "the client went away"))
        }
        if reset || response != .ended { onReset?() }
        onReset = nil
    }
}
