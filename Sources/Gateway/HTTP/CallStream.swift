import Synchronization
import Wire

/// One request and its response on the gateway: an HTTP/2 stream, or one
/// exchange of an HTTP/1.1 connection. Loop thread only: the connection's
/// callbacks and the call's forwarder (a unary forward's completions, or a
/// streaming call's task, which prefers the loop as its executor) are the
/// only users.
///
/// Inbound: body bytes become gRPC messages in `requests`; credit (HTTP/2
/// window updates, or HTTP/1.1 reading on) is returned as the forwarder
/// takes them, so a client cannot make the gateway buffer more than about
/// `maxQueuedRequestBytes` plus one window.
/// Outbound: response bytes wait in `out` until the connection asks for them;
/// `sendMessage` suspends while more than `maxQueuedResponseBytes` wait, so
/// a client that reads slowly slows the backend instead of growing memory.
///
/// Every byte the stream holds either way is counted in `heldBytes` and
/// against its connection's and the process's budget (`hold`/`release`);
/// credit is withheld and responses are refused or wait when they are spent,
/// and whatever is still held is given back when the stream closes.
final class CallStream: @unchecked Sendable {
    static let maxQueuedRequestBytes = 1 << 20
    static let maxQueuedResponseBytes = 256 << 10

    enum Response { case none, started, ended }

    let id: Int32
    /// Strong: a forwarder's completion may arrive after the connection
    /// closed, and must find it (closed, so every operation on it is a
    /// no-op) rather than freed memory. The connection drops its streams
    /// when it closes, so the cycle ends with the connection.
    let connection: GatewayConnection
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
    /// The request body is one message as it stands (a JSON call), not length-prefixed gRPC messages.
    var rawBody = false
    /// How messages and the status are written both ways (set as the request's headers are read).
    var framing = GRPCRequest.Framing.grpc {
        didSet { base64In = framing.isText ? Base64Stream() : nil }
    }
    /// A grpc-web-text request body being decoded.
    private var base64In: Base64Stream?
    let startedAt = LoopClock.nowMillis()

    /// Bytes of request header fields so far; nil once the headers are complete.
    var headerBytes: Int? = 0
    // Inbound accounting: messages not yet taken, DATA bytes not yet credited.
    private var queuedRequestBytes = 0
    private var unreturnedCredit = 0
    /// Bytes counted against the budgets now: request bytes not yet forwarded, response bytes not yet sent.
    private(set) var heldBytes = 0
    /// The client half-closed its side.
    private(set) var requestComplete = false

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

    init(id: Int32, connection: GatewayConnection, maxMessageBytes: Int) {
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
        hold(bytes.count)  // the bytes arrived within the window given: held until forwarded or dropped
        unreturnedCredit += bytes.count
        if rawBody {  // taken whole by the unary forward; bounded like one gRPC message
            if wholeRequest.isEmpty { wholeRequest.append([]) }
            guard wholeRequest[0].count + bytes.count <= deframer.maxMessageBytes else {
                throw RPCError(.resourceExhausted, "the request body exceeds \(deframer.maxMessageBytes) bytes")
            }
            wholeRequest[0].append(contentsOf: bytes)
            returnCreditIfRoom()
            return
        }
        if base64In != nil {
            let decoded = try base64In!.append(bytes)
            try decoded.withUnsafeBytes { try deframe($0) }
        } else {
            try deframe(bytes)
        }
        returnCreditIfRoom()
    }

    private func deframe(_ bytes: UnsafeRawBufferPointer) throws {
        for m in try deframer.append(bytes) {
            if m.compressed { throw RPCError(.unimplemented, "compressed messages are not supported (grpc-encoding identity only)") }
            if onWholeRequest != nil {
                if wholeRequest.count < 2 {
                    wholeRequest.append(m.payload)
                    release(5)
                } else {
                    release(m.payload.count + 5)
                }
                continue
            }
            release(5)
            queuedRequestBytes += m.payload.count
            requests.push(m.payload)
        }
    }

    /// The client half-closed (END_STREAM).
    func requestEnded() {
        requestComplete = true
        if rawBody && wholeRequest.isEmpty { wholeRequest = [[]] }  // an empty body is the empty message
        if deframer.hasPartialMessage || base64In?.hasPartialGroup == true {
            requestFailed(RPCError(.internal, "the request ended inside a gRPC message"))
        } else if let whole = onWholeRequest {
            onWholeRequest = nil
            let messages = wholeRequest
            wholeRequest = []
            release(messages.reduce(0) { $0 + $1.count })
            whole(.success(messages))
        } else {
            requests.finish()
        }
    }

    /// The request cannot be read on (bad framing, oversized or compressed message).
    func requestFailed(_ error: Error) {
        if let whole = onWholeRequest {
            onWholeRequest = nil
            release(wholeRequest.reduce(0) { $0 + $1.count })
            wholeRequest = []
            whole(.failure((error as? RPCError) ?? RPCError(.internal, "\(error)")))
        } else {
            requests.abort(error)
        }
    }

    /// Returns the credit of bytes received so far unless this stream's
    /// queue is full or its connection (or the process) holds too much; the
    /// connection calls it again on its tick while credit is withheld.
    func returnCreditIfRoom() {
        guard unreturnedCredit > 0, !closed, queuedRequestBytes <= Self.maxQueuedRequestBytes, connection.hasInboundRoom else { return }
        connection.consume(stream: id, bytes: unreturnedCredit)
        unreturnedCredit = 0
    }

    /// The client's request is complete and the answer is not: the call waits on its backend.
    var awaitsBackend: Bool { requestComplete && response != .ended && !closed }

    /// Credit withheld for lack of room.
    var withholdsCredit: Bool { unreturnedCredit > 0 && !closed }

    func nextRequest() async throws -> [UInt8]? {
        let m = try await requests.next()
        if let m, !closed {
            queuedRequestBytes -= m.count
            release(m.count)
            returnCreditIfRoom()
        }
        return m
    }

    /// The request message limit of this stream's method (headers are
    /// complete, no DATA has been read yet).
    func setMaxMessageBytes(_ n: Int) {
        if !deframer.hasPartialMessage { deframer = GRPCDeframer(maxMessageBytes: n) }
    }

    // MARK: Budget

    private func hold(_ n: Int) {
        heldBytes += n
        connection.hold(n)
    }

    private func release(_ n: Int) {
        guard n > 0 else { return }
        heldBytes -= n
        connection.release(n)
    }

    // MARK: Outbound (forwarder)

    /// Starts the response: `:status 200`, the gRPC content type and `headers`.
    func sendHeaders(_ headers: [(String, String)]) {
        guard response == .none, !closed else { return }
        response = .started
        connection.submitResponse(stream: id, headers: [(":status", "200"), ("content-type", framing.responseContentType)] + headers, withBody: true)
    }

    /// Queues one length-prefixed message (a unary response, whole). Throws
    /// CANCELLED if the client went away, RESOURCE_EXHAUSTED if its connection
    /// (or the process) already holds as much unread response as it may.
    func queueMessage(_ payload: [UInt8]) throws {
        guard !closed, response == .started else { throw RPCError(.cancelled, "the client went away") }
        guard tryQueue(payload) else { throw unreadResponses() }
    }

    /// Queues one length-prefixed message of a stream; waits while the client
    /// is far behind or its connection's budget is spent (so the backend's
    /// Wire flow control holds the rest).
    func sendMessage(_ payload: [UInt8]) async throws {
        guard payload.count + 5 <= connection.limits.maxConnectionBufferedBytes else { throw unreadResponses() }
        while true {
            guard !closed, response == .started else { throw RPCError(.cancelled, "the client went away") }
            if out.count - outOffset <= Self.maxQueuedResponseBytes, tryQueue(payload) { return }
            try await withCheckedThrowingContinuation { drainWaiter = $0 }
        }
    }

    private func tryQueue(_ payload: [UInt8]) -> Bool {
        guard connection.reserve(payload.count + 5) else { return false }
        if framing.isText {
            var frame: [UInt8] = []
            GRPCDeframer.appendPrefixed(payload, to: &frame)
            let text = GRPCWebFraming.text(frame)
            connection.hold(text.count - frame.count)  // base64's third more, held as the rest is
            heldBytes += text.count
            out += text
            bytesOut += text.count
        } else {
            heldBytes += payload.count + 5
            GRPCDeframer.appendPrefixed(payload, to: &out)
            bytesOut += payload.count + 5
        }
        resumeData()
        return true
    }

    private func unreadResponses() -> RPCError {
        RPCError(.resourceExhausted, "the client is not reading its responses: the gateway holds as much for it as it may")
    }

    /// Wakes a sender waiting for room (the connection's tick: room may have come from other streams).
    func wakeSender() {
        if let w = drainWaiter {
            drainWaiter = nil
            w.resume()
        }
    }

    /// Ends the call with trailers; a trailers-only response if nothing was sent.
    func finish(trailers: [(String, String)], headers: [(String, String)] = []) {
        guard response != .ended, !closed else { return }
        if case .grpcWeb(let text, _) = framing {  // the status goes at the end of the body
            if response == .none { sendHeaders(headers) }
            response = .ended
            let frame = GRPCWebFraming.trailerFrame(trailers)
            let bytes = text ? GRPCWebFraming.text(frame) : frame
            hold(bytes.count)
            out += bytes
            bytesOut += bytes.count
            pendingTrailers = nil
            resumeData()
            return
        }
        if response == .none {
            response = .ended
            connection.submitResponse(
                stream: id, headers: [(":status", "200"), ("content-type", framing.responseContentType)] + headers + trailers, withBody: false)
            return
        }
        response = .ended
        pendingTrailers = trailers
        resumeData()
    }

    /// A plain HTTP answer: for requests that are not gRPC (e.g. 415),
    /// `/metrics`, and JSON calls (`headers` after the content headers).
    func respondHTTP(status: Int, contentType: String, body: [UInt8], headers: [(String, String)] = []) {
        guard response == .none, !closed else { return }
        response = .ended
        hold(body.count)
        out.append(contentsOf: body)
        bytesOut += body.count
        pendingTrailers = nil
        connection.submitResponse(
            stream: id,
            headers: [(":status", String(status)), ("content-type", contentType), ("content-length", String(body.count))] + headers,
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
            release(n)
            if outOffset == out.count {
                out.removeAll(keepingCapacity: out.capacity <= 64 << 10)
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
        out = []
        outOffset = 0
        deframer = GRPCDeframer(maxMessageBytes: deframer.maxMessageBytes)
        release(heldBytes)  // whatever is still queued either way is dropped with the stream
        if let w = drainWaiter {
            drainWaiter = nil
            w.resume(throwing: RPCError(.cancelled, "the client went away"))
        }
        if reset || response != .ended { onReset?() }
        onReset = nil
    }
}
