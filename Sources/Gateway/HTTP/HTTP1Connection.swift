import Wire

/// One HTTP/1.1 connection of the gateway: requests one at a time, each a
/// `CallStream` the gateway answers exactly as it answers an HTTP/2 stream.
/// It carries what HTTP/1.1 can: gRPC-Web, JSON calls, `/metrics`, CORS
/// preflights (gRPC itself needs HTTP/2 and is refused with 505).
///
/// - Responses of unknown length are chunked (HTTP/1.1) or end with the
///   connection (HTTP/1.0); a gRPC-Web stream's trailers are in its body.
/// - Request bodies are read only as fast as the call takes them: past one
///   window of unread body (`HTTPLimits.initialWindowSize`) the socket is not
///   read, so TCP holds the client back, as HTTP/2 credit would.
/// - While a response is outstanding, pipelined bytes wait in the socket;
///   the connection still watches for the client hanging up, which cancels
///   the call.
/// - A response that ends before its request body does (a refusal) is
///   followed by reading and dropping the rest of the body, at most one
///   message's worth; then the connection is reused, or closed past that.
/// Loop thread only.
final class HTTP1Connection: GatewayConnection, @unchecked Sendable {
    // @unchecked: loop-thread only.
    /// Bytes read and not yet parsed, at most `inputCap` before reading stops.
    private var input: [UInt8] = []
    private var parsed = 0
    private static let inputCap = 64 << 10
    private var parser: HTTP1RequestParser
    private var exchange: Exchange?
    private var nextStreamID: Int32 = 1
    private var requestsSeen = 0
    /// When the first byte of the head being read arrived (header timeout).
    private var headStartedAt: Int64?
    private var pendingOut: [UInt8] = []
    /// Close once `pendingOut` is written (the response said `connection: close`, or a refusal).
    private var closeWhenFlushed = false
    private var draining = false
    /// `process` is on the stack: credit coming back from a stream is picked up by its loop.
    private var processing = false
    /// No request is started while this much output waits unsent: answers
    /// with no body (a preflight's 204) end at once, so without it a client
    /// pipelining such requests and reading nothing would grow `pendingOut`
    /// without bound. Responses with a body are bounded by `pullBody`.
    private static let outputCap = 256 << 10
    private var waitingForClientToRead = false

    /// One request and its response.
    private struct Exchange {
        let stream: CallStream
        let head: HTTP1RequestParser.Head
        var requestEnded = false
        var continueSent = false
        var response = Response.none
        /// Body bytes handed to the stream whose credit has not come back.
        var unconsumed = 0
        /// Body bytes dropped after the response ended.
        var discarded = 0
        /// The connection ends with this response.
        var lastOnConnection: Bool

        enum Response: Equatable {
            case none
            /// The head is written; body bytes are framed as chunks, or sent as they are.
            case body(chunked: Bool)
            case ended
        }
    }

    override init(
        fd: Int32, loop: EventLoop, peer: String, transport: ByteTransport, limits: HTTPLimits, budget: BufferBudget,
        handler: GatewayRequestHandler, acceptedAt: Int64, onClose: @escaping @Sendable (GatewayConnection) -> Void
    ) {
        parser = HTTP1RequestParser(maxHeadBytes: limits.maxHeaderListBytes)
        super.init(
            fd: fd, loop: loop, peer: peer, transport: transport, limits: limits, budget: budget, handler: handler, acceptedAt: acceptedAt,
            onClose: onClose)
    }

    override var openStreams: Int { exchange == nil ? 0 : 1 }
    override var httpVersion: String { "HTTP/1.1" }

    /// Serves the connection from here, starting with bytes already read from it.
    func start(firstBytes: [UInt8]) {
        input = firstBytes
        if !firstBytes.isEmpty { headStartedAt = loop.iterationMillis }
        process()
        if transport.hasBufferedInput { loop.execute { [self] in readable() } }
    }

    // MARK: Input

    override func readable() {
        guard !isClosed else { return }
        if readInterest == .none || input.count - parsed >= Self.inputCap {
            // Input is not wanted and cannot be held: only an error or a full hang-up reports this socket now.
            return close("the client hung up")
        }
        let buffer = loop.readBuffer
        for _ in 0..<limits.readsPerTurn {
            guard !isClosed, input.count - parsed < Self.inputCap else { break }
            switch transport.read(into: buffer) {
            case .bytes(let n):
                if exchange == nil && input.count == parsed { headStartedAt = loop.iterationMillis }
                input.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[..<n]))
                lastActivity = loop.iterationMillis
            case .wouldBlock(let wantsWrite):
                if wantsWrite { waitForWritable() }
                return process()
            case .closed(let why):
                return close(why ?? (exchange == nil ? nil : "the client closed the connection"))
            }
        }
        process()
        if !isClosed && transport.hasBufferedInput && readInterest == .input { loop.execute { [self] in readable() } }
    }

    /// Parses what has been read, as far as the exchange in progress lets it.
    private func process() {
        guard !isClosed, !closeWhenFlushed, !processing else { return }
        processing = true
        defer {
            processing = false
            compactInput()
            updateReadInterest()
        }
        do {
            while !isClosed, !closeWhenFlushed {
                if let e = exchange {
                    if e.requestEnded { return }  // the next request waits for this response
                    if e.response != .ended && e.unconsumed >= limits.initialWindowSize { return }  // the call has not taken the body yet
                } else if pendingOut.count >= Self.outputCap {
                    waitingForClientToRead = true
                    headStartedAt = nil  // the gateway holds the next head back, not the client: no 408 for it
                    return
                }
                guard let event = try parser.next(input, at: &parsed) else { return }
                switch event {
                case .head(let head): begin(head)
                case .body(let range): body(range)
                case .end: requestEnded()
                }
            }
        } catch {
            refuse(error)
        }
    }

    private func compactInput() {
        if parsed == input.count {
            input.removeAll(keepingCapacity: input.capacity <= Self.inputCap * 2)
            parsed = 0
        } else if parsed >= Self.inputCap {
            input.removeFirst(parsed)
            parsed = 0
        }
    }

    /// Reads input while a request is being read and its call keeps up;
    /// otherwise watches only for the client hanging up (or, with the input
    /// buffer full, for nothing but errors).
    private func updateReadInterest() {
        guard !isClosed else { return }
        let wanted: Bool
        if closeWhenFlushed {
            wanted = false
        } else if let e = exchange {
            wanted = !e.requestEnded && (e.response == .ended || e.unconsumed < limits.initialWindowSize)
        } else {
            wanted = !draining && !waitingForClientToRead
        }
        readInterest = input.count - parsed >= Self.inputCap ? .none : wanted ? .input : .hangUp
    }

    /// A request head: hop-by-hop fields dropped, pseudo-fields made, handed to the gateway as a stream.
    private func begin(_ head: HTTP1RequestParser.Head) {
        requestsSeen += 1
        headStartedAt = nil
        let hopByHop = Self.hopByHop(head)
        var fields: [(name: String, value: String)] = [
            (":method", head.method), (":path", head.target), (":scheme", transport is PlainTransport ? "http" : "https"),
        ]
        if let host = head.field("host") { fields.append((":authority", host)) }
        fields += head.fields.filter { !hopByHop.contains($0.name) && $0.name != "host" }
        let stream = CallStream(id: nextStreamID, connection: self, maxMessageBytes: limits.maxMessageBytes)
        nextStreamID &+= 1
        stream.requestHeaders = fields
        stream.headerBytes = nil
        exchange = Exchange(stream: stream, head: head, lastOnConnection: !head.keepAlive || draining)
        handler.handle(stream)
        if head.expectsContinue, var e = exchange, e.stream === stream, e.response == .none {
            e.continueSent = true
            exchange = e
            pendingOut += Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
            flushSoon()
        }
    }

    /// Fields that describe this connection, not the request (RFC 9110 §7.6.1): never passed on.
    private static func hopByHop(_ head: HTTP1RequestParser.Head) -> Set<String> {
        Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "expect", "trailer"] + head.connectionOptions)
    }

    private func body(_ range: Range<Int>) {
        guard var e = exchange else { return }
        if e.response == .ended {
            // Answered already (a refusal): the rest of the body is read and dropped, up to one message's worth.
            e.discarded += range.count
            exchange = e
            if e.discarded > limits.maxMessageBytes {
                closeWhenFlushed = true
                flushSoon()
            }
            return
        }
        e.unconsumed += range.count
        exchange = e
        input.withUnsafeBytes { all in
            let bytes = UnsafeRawBufferPointer(rebasing: all[range])
            do { try e.stream.received(bytes) } catch {
                e.stream.requestFailed(error)
                consume(stream: e.stream.id, bytes: bytes.count)
            }
        }
    }

    private func requestEnded() {
        guard var e = exchange else { return }
        e.requestEnded = true
        exchange = e
        if e.response == .ended {
            finishExchange()
        } else {
            e.stream.requestEnded()
        }
    }

    /// The stream took `bytes` of body: reading goes on if it was waiting for that.
    override func consume(stream id: Int32, bytes: Int) {
        guard var e = exchange, e.stream.id == id, !isClosed else { return }
        let wasFull = e.unconsumed >= limits.initialWindowSize
        e.unconsumed = max(0, e.unconsumed - bytes)
        exchange = e
        if wasFull && e.unconsumed < limits.initialWindowSize && !processing {
            loop.execute { [self] in resumeInput() }
        }
    }

    /// Parses what waits in the input buffer, then reads on.
    private func resumeInput() {
        guard !isClosed else { return }
        process()
        if !isClosed && readInterest == .input && transport.hasBufferedInput { readable() }
    }

    /// An unreadable request: its status as a plain answer (if no response
    /// has started), then the connection closes; an open call is cancelled.
    private func refuse(_ error: Error) {
        let refusal = error as? HTTP1RequestParser.Refusal ?? .init(status: 400, reason: "\(error)")
        handler.refused(peer: peer, status: refusal.status, reason: refusal.reason)
        if let e = exchange {
            exchange = nil
            e.stream.didClose(reset: true)
            guard e.response == .none else { return close("unreadable request body: \(refusal.reason)") }
        }
        let body = Array((refusal.reason + "\n").utf8)
        pendingOut += Self.head(
            status: refusal.status,
            fields: [("content-type", "text/plain"), ("content-length", String(body.count)), ("connection", "close")]) + body
        closeWhenFlushed = true
        flushSoon()
    }

    // MARK: Output

    override func submitResponse(stream id: Int32, headers: [(String, String)], withBody: Bool) {
        guard var e = exchange, e.stream.id == id, e.response == .none, !isClosed else { return }
        let status = Int(headers.first { $0.0 == ":status" }?.1 ?? "") ?? 500
        var fields = headers.filter { !$0.0.hasPrefix(":") && Self.isSafe($0.0) && Self.isSafe($0.1) }
        let length = fields.first { $0.0 == "content-length" }.flatMap { Int($0.1) }
        let chunked = withBody && length == nil && e.head.minorVersion == 1
        if chunked {
            fields.append(("transfer-encoding", "chunked"))
        } else if withBody && length == nil {
            e.lastOnConnection = true  // HTTP/1.0: the body ends with the connection
        } else if length == nil {
            fields.append(("content-length", "0"))
        }
        // Answered before the body was asked for: the client may or may not send it, so the connection cannot be reused.
        if e.head.expectsContinue && !e.continueSent && !e.requestEnded { e.lastOnConnection = true }
        if e.lastOnConnection || draining { fields.append(("connection", "close")) }
        pendingOut += Self.head(status: status, fields: fields)
        e.response = withBody ? .body(chunked: chunked) : .ended
        exchange = e
        lastActivity = loop.iterationMillis
        if !withBody { responseEnded() }
        flushSoon()
    }

    override func resumeData(stream id: Int32) {
        guard let e = exchange, e.stream.id == id else { return }
        flushSoon()
    }

    /// The status line and header section.
    private static func head(status: Int, fields: [(String, String)]) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason(status))\r\n"
        for (name, value) in fields { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// No CR, LF or NUL: nothing a field could use to end the header section early.
    private static func isSafe(_ text: String) -> Bool { !text.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 } }

    override func flushDeferred() {
        super.flushDeferred()
        guard !isClosed else { return }
        pullBody()
        guard let sent = write(pendingOut) else { return }
        if sent < pendingOut.count {
            pendingOut.removeFirst(sent)
            return
        }
        pendingOut.removeAll(keepingCapacity: pendingOut.capacity <= 1 << 20)
        if closeWhenFlushed {
            close(nil)
        } else if case .body = exchange?.response {
            pullBody()
            if !pendingOut.isEmpty { flushSoon() }
        } else if waitingForClientToRead {
            waitingForClientToRead = false
            if parsed < input.count { headStartedAt = loop.iterationMillis }
            resumeInput()
        }
    }

    override func writable() {
        super.writable()
        flushDeferred()
    }

    /// Moves response body bytes from the stream to `pendingOut` (up to 256
    /// KiB waiting), framed as chunks if chunked. A response ends only when
    /// its last byte is pulled, and the next request starts only then: so a
    /// client pipelining requests without reading the answers holds at most
    /// this much unsent here, and TCP holds it back.
    private func pullBody() {
        guard let e = exchange, case .body(let chunked) = e.response else { return }
        let scratch = loop.readBuffer
        while pendingOut.count < Self.outputCap {
            switch e.stream.readBody(into: scratch) {
            case .wait:
                return
            case .bytes(let n, let end, _):
                if n > 0 && e.head.method != "HEAD" {
                    if chunked { pendingOut += Array((String(n, radix: 16) + "\r\n").utf8) }
                    pendingOut.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<n]))
                    if chunked { pendingOut += [0x0D, 0x0A] }
                    lastActivity = loop.iterationMillis
                }
                if end {
                    if chunked && e.head.method != "HEAD" { pendingOut += Array("0\r\n\r\n".utf8) }
                    exchange?.response = .ended
                    return responseEnded()
                }
            }
        }
    }

    /// The response is complete: the call is over. The exchange ends when its request has too.
    private func responseEnded() {
        guard let e = exchange else { return }
        e.stream.didClose(reset: false)
        if e.requestEnded {
            finishExchange()
        } else {
            loop.execute { [self] in resumeInput() }  // read and drop the rest of the body
        }
    }

    /// Both halves are done: the connection takes the next request, or closes.
    private func finishExchange() {
        guard let e = exchange else { return }
        exchange = nil
        parser.reset()
        if e.lastOnConnection || draining {
            closeWhenFlushed = true
            flushSoon()
            return
        }
        if parsed < input.count { headStartedAt = loop.iterationMillis }
        loop.execute { [self] in resumeInput() }  // a pipelined request, or bytes still in the socket
    }

    // MARK: Lifetime

    override func isIdle(forMillis millis: Int64) -> Bool {
        !isClosed && exchange == nil && loop.iterationMillis - lastActivity >= millis
    }

    override func beginDrain() {
        guard !isClosed, !draining else { return }
        draining = true
        if exchange == nil {
            closeWhenFlushed = true
            flushSoon()
        }
    }

    override func tick(nowMillis now: Int64) {
        guard !isClosed else { return }
        if let started = headStartedAt, now - started > limits.headerTimeoutMillis {
            refuse(HTTP1RequestParser.Refusal(status: 408, reason: "the request head did not arrive within \(limits.headerTimeoutMillis) ms"))
        } else if requestsSeen == 0 && exchange == nil && now - acceptedAt > limits.headerTimeoutMillis {
            close("no request within \(limits.headerTimeoutMillis) ms")
        } else if now - lastActivity > limits.idleTimeoutMillis && !(exchange?.stream.awaitsBackend ?? false) {
            close("idle for \(limits.idleTimeoutMillis) ms")
        } else if let s = exchange?.stream {
            retryStalled([s])
        }
    }

    override func close(_ reason: String?, flushFirst: Bool = false) {
        guard !isClosed else { return }
        if flushFirst { _ = pendingOut.withUnsafeBytes { transport.write($0) } }
        let open = exchange.map { [$0.stream] } ?? []
        exchange = nil
        pendingOut = []
        input = []
        closeSocket(reason, streams: open)
    }

    /// The reason phrase of the statuses the gateway sends.
    static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 204: return "No Content"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 412: return "Precondition Failed"
        case 413: return "Content Too Large"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 499: return "Client Closed Request"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status \(status)"
        }
    }
}
