import CNGHTTP2
import Glibc
import Wire

/// One HTTP/2 connection of the gateway: an nghttp2 server session and its
/// streams over the socket. Everything runs on the loop thread; output
/// produced during a loop iteration leaves in one write. A client whose
/// first bytes are an HTTP/1 request (or that chose `http/1.1` by ALPN) is
/// handed to an `HTTP1Connection`.
final class HTTP2Connection: GatewayConnection, @unchecked Sendable {
    // @unchecked: loop-thread only.
    private var flood: FrameFloodGuard
    /// A flood or protocol violation ended the session: read nothing more, send the GOAWAY, close.
    private var terminating = false
    private var session: OpaquePointer?
    private var streams: [Int32: CallStream] = [:]
    private var handshaken: Bool
    /// Nothing has been read yet: the first bytes tell HTTP/2 from an HTTP/1 request.
    private var firstRead = true
    private var pendingOut: [UInt8] = []
    private var requestsSeen = 0
    private var draining = false

    init(
        fd: Int32, loop: EventLoop, peer: String, transport: ByteTransport, limits: HTTPLimits,
        budget: BufferBudget, handler: GatewayRequestHandler, onClose: @escaping @Sendable (GatewayConnection) -> Void
    ) {
        flood = FrameFloodGuard(limits: limits.flood, nowMillis: LoopClock.nowMillis())
        handshaken = transport is PlainTransport
        super.init(fd: fd, loop: loop, peer: peer, transport: transport, limits: limits, budget: budget, handler: handler, onClose: onClose)
        session = makeSession()
    }

    deinit { if let session { nghttp2_session_del(session) } }

    override var openStreams: Int { streams.count }
    override var httpVersion: String { "HTTP/2" }

    // MARK: Session setup

    private func makeSession() -> OpaquePointer? {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, user in
            guard let f = frame?.pointee, f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), f.headers.cat == NGHTTP2_HCAT_REQUEST
            else { return 0 }
            return HTTP2Connection.from(user).beginStream(f.hd.stream_id)
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, namelen, value, valuelen, _, user in
            guard let f = frame?.pointee, f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            return HTTP2Connection.from(user).header(
                f.hd.stream_id, UnsafeRawBufferPointer(start: name, count: namelen), UnsafeRawBufferPointer(start: value, count: valuelen))
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, user in
            guard let f = frame?.pointee else { return 0 }
            return HTTP2Connection.from(user).frameReceived(f)
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, len, user in
            HTTP2Connection.from(user).data(streamID, UnsafeRawBufferPointer(start: data, count: len))
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, user in
            HTTP2Connection.from(user).streamClosed(streamID, errorCode: errorCode)
            return 0
        }
        var options: OpaquePointer?
        nghttp2_option_new(&options)
        defer { nghttp2_option_del(options) }
        nghttp2_option_set_no_auto_window_update(options, 1)  // credit returns as the backend takes messages
        var s: OpaquePointer?
        guard nghttp2_session_server_new2(&s, callbacks, Unmanaged.passUnretained(self).toOpaque(), options) == 0, let s else { return nil }
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(limits.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(limits.initialWindowSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: UInt32(limits.maxFrameSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(limits.maxHeaderListBytes)),
        ]
        nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(limits.connectionWindowSize))
        return s
    }

    private static func from(_ user: UnsafeMutableRawPointer?) -> HTTP2Connection {
        Unmanaged<HTTP2Connection>.fromOpaque(user!).takeUnretainedValue()
    }

    // MARK: nghttp2 callbacks

    private func beginStream(_ id: Int32) -> Int32 {
        streams[id] = CallStream(id: id, connection: self, maxMessageBytes: limits.maxMessageBytes)
        return 0
    }

    private func header(_ id: Int32, _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Int32 {
        guard let s = streams[id], let sofar = s.headerBytes else { return 0 }
        let size = sofar + name.count + value.count + 32
        s.headerBytes = size
        if size > limits.maxHeaderListBytes {
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
            return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        s.requestHeaders.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        return 0
    }

    private func frameReceived(_ f: nghttp2_frame) -> Int32 {
        let endStream = f.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        if let flooded = policeFrame(f, endStream: endStream) {
            terminate(NGHTTP2_ENHANCE_YOUR_CALM.rawValue, flooded)
            return 0
        }
        guard let s = streams[f.hd.stream_id] else { return 0 }
        if f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) && f.headers.cat == NGHTTP2_HCAT_REQUEST {
            s.headerBytes = nil
            requestsSeen += 1
            handler.handle(s)
        }
        if endStream && (f.hd.type == UInt8(NGHTTP2_DATA.rawValue) || f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue)) {
            s.requestEnded()
        }
        return 0
    }

    /// Frames that do work for the client count as activity; those that do
    /// none spend the flood guard's budget. The reason to end the connection, if any.
    private func policeFrame(_ f: nghttp2_frame, endStream: Bool) -> String? {
        let now = loop.iterationMillis
        switch Int(f.hd.type) {
        case Int(NGHTTP2_HEADERS.rawValue):
            lastActivity = now
        case Int(NGHTTP2_DATA.rawValue):
            if f.hd.length > 0 { lastActivity = now } else if !endStream { return flood.controlFrame(nowMillis: now) }
        case Int(NGHTTP2_PING.rawValue):
            if f.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { return flood.ping(nowMillis: now, streamsOpen: !streams.isEmpty) }
        case Int(NGHTTP2_WINDOW_UPDATE.rawValue), Int(NGHTTP2_PRIORITY.rawValue):
            return flood.controlFrame(nowMillis: now)
        case Int(NGHTTP2_SETTINGS.rawValue):
            if f.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { return flood.controlFrame(nowMillis: now) }
        default:
            break
        }
        return nil
    }

    private func data(_ id: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        guard let s = streams[id] else {
            consume(stream: id, bytes: bytes.count)
            return 0
        }
        do { try s.received(bytes) } catch {
            s.requestFailed(error)
            consume(stream: id, bytes: bytes.count)
        }
        return 0
    }

    private func streamClosed(_ id: Int32, errorCode: UInt32) {
        guard let s = streams.removeValue(forKey: id) else { return }
        s.didClose(reset: errorCode != 0)
    }

    // MARK: Used by streams

    /// No call open and no request or response for `millis` (loop thread).
    override func isIdle(forMillis millis: Int64) -> Bool {
        !isClosed && streams.isEmpty && loop.iterationMillis - lastActivity >= millis
    }

    override func consume(stream id: Int32, bytes: Int) {
        guard let session, !isClosed else { return }
        nghttp2_session_consume(session, id, bytes)
        flushSoon()
    }

    /// A HEADERS or DATA frame goes to the client: activity, and the client's
    /// acknowledgements and pings that follow are expected.
    private func responseFrameSent() {
        lastActivity = loop.iterationMillis
        flood.responseFrameSent()
    }

    override func submitResponse(stream id: Int32, headers: [(String, String)], withBody: Bool) {
        guard let session, !isClosed else { return }
        responseFrameSent()
        HeaderBlock.with(headers) { nva, count in
            if withBody {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: HTTP2Connection.readBody)
                nghttp2_submit_response(session, id, nva, count, &provider)
            } else {
                nghttp2_submit_response(session, id, nva, count, nil)
            }
        }
        flushSoon()
    }

    override func resumeData(stream id: Int32) {
        guard let session, !isClosed else { return }
        nghttp2_session_resume_data(session, id)
        flushSoon()
    }

    private static let readBody: nghttp2_data_source_read_callback = { session, id, buf, length, flags, _, user in
        let c = HTTP2Connection.from(user)
        guard let s = c.streams[id] else { return Int(NGHTTP2_ERR_DEFERRED.rawValue) }
        switch s.readBody(into: UnsafeMutableRawBufferPointer(start: buf, count: length)) {
        case .wait:
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .bytes(let n, let end, let trailers):
            c.responseFrameSent()
            if end {
                flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                if let trailers {
                    flags!.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                    HeaderBlock.with(trailers) { nva, count in _ = nghttp2_submit_trailer(session, id, nva, count) }
                }
            }
            return n
        }
    }

    // MARK: Loop events

    override func readable() {
        if !handshaken {
            switch transport.handshake() {
            case .bytes:
                handshaken = true
                if transport.negotiatedProtocol == "http/1.1" { return handOverToHTTP1(firstBytes: []) }
            case .wouldBlock(let wantsWrite):
                if wantsWrite { waitForWritable() }
                return
            case .closed(let why):
                close(why ?? "closed during the TLS handshake")
                return
            }
        }
        // A bounded number of reads per turn: the rest waits for the next
        // turn (epoll is level-triggered; TLS's own buffer is looked at
        // below), so other connections on this loop are served in between,
        // and what this one's input produced (answers, a GOAWAY) goes out
        // at the end of each turn.
        let buffer = loop.readBuffer
        for _ in 0..<limits.readsPerTurn {
            guard !isClosed, !terminating else { break }
            switch transport.read(into: buffer) {
            case .bytes(let n):
                if firstRead {
                    firstRead = false
                    let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<n])
                    if Self.looksLikeHTTP1(bytes) { return handOverToHTTP1(firstBytes: Array(bytes)) }
                }
                let r = nghttp2_session_mem_recv(session, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), n)
                if r < 0 {
                    close("HTTP/2 protocol error: \(String(cString: nghttp2_strerror(Int32(r))))", flushFirst: true)
                    return
                }
                // nghttp2's own defences (Rapid Reset, CONTINUATION and ack floods) end the session: act on it now.
                if let session, nghttp2_session_want_read(session) == 0 { terminating = true }
            case .wouldBlock(let wantsWrite):
                if wantsWrite { waitForWritable() }
                flushSoon()
                return
            case .closed(let why):
                close(why)
                return
            }
        }
        guard !isClosed else { return }
        if terminating {
            flushDeferred()  // the GOAWAY, then close
            if !isClosed { close(closeReason ?? "the session ended", flushFirst: true) }
            return
        }
        flushSoon()
        if transport.hasBufferedInput { loop.execute { [self] in readable() } }
    }

    /// Whether a connection's first bytes are an HTTP/1 request line rather than the HTTP/2 preface.
    static func looksLikeHTTP1(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let methods = ["GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH "]
        return methods.contains { m in bytes.count >= m.utf8.count && zip(m.utf8, bytes).allSatisfy { $0 == $1 } }
    }

    /// An HTTP/1.1 client (curl without `--http2`, a browser over plain
    /// HTTP, or one that chose `http/1.1` by ALPN): an `HTTP1Connection`
    /// serves it from here, starting with the bytes already read. Nothing has
    /// been sent on this connection yet.
    private func handOverToHTTP1(firstBytes: [UInt8]) {
        let (budget, onClose) = shared
        let successor = HTTP1Connection(
            fd: fd, loop: loop, peer: peer, transport: transport, limits: limits, budget: budget, handler: handler, acceptedAt: acceptedAt,
            onClose: onClose)
        handOver(to: successor)
        successor.start(firstBytes: firstBytes)
    }

    /// Ends the session for a flood: GOAWAY with `code` and the reason as
    /// its debug data (grpc-go's clients look for "too_many_pings"), then
    /// close; nothing more is read.
    private func terminate(_ code: UInt32, _ reason: String) {
        guard !terminating else { return }
        terminating = true
        submitGoAway(code, reason)
    }

    override func writable() {
        super.writable()
        if !handshaken { readable() } else { flushDeferred() }
    }

    /// Serializes what nghttp2 has to send and writes it; the rest waits for EPOLLOUT.
    override func flushDeferred() {
        super.flushDeferred()
        guard !isClosed, let session, handshaken else { return }
        while pendingOut.count < 256 << 10 {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 {
                close("HTTP/2 send error: \(String(cString: nghttp2_strerror(Int32(n))))")
                return
            }
            if n == 0 { break }
            pendingOut.append(contentsOf: UnsafeBufferPointer(start: data, count: n))
        }
        guard let sent = write(pendingOut) else { return }
        if sent < pendingOut.count {
            pendingOut.removeFirst(sent)
            return
        }
        pendingOut.removeAll(keepingCapacity: pendingOut.capacity <= 1 << 20)
        if nghttp2_session_want_write(session) != 0 {
            flushSoon()
        } else if nghttp2_session_want_read(session) == 0 {
            close(draining ? nil : "the session ended")
        }
    }

    override func tick(nowMillis now: Int64) {
        guard !isClosed else { return }
        if !handshaken && now - acceptedAt > limits.handshakeTimeoutMillis {
            close("TLS handshake did not complete within \(limits.handshakeTimeoutMillis) ms")
        } else if requestsSeen == 0 && streams.isEmpty && now - acceptedAt > limits.headerTimeoutMillis {
            goAway(NGHTTP2_SETTINGS_TIMEOUT.rawValue, "no request within \(limits.headerTimeoutMillis) ms")
        } else if let slow = streams.values.first(where: { $0.headerBytes != nil && now - $0.startedAt > limits.headerTimeoutMillis }) {
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), slow.id, NGHTTP2_CANCEL.rawValue)
            flushSoon()
        } else if now - lastActivity > limits.idleTimeoutMillis && !streams.values.contains(where: \.awaitsBackend) {
            // Idle: nothing but control frames (PINGs, WINDOW_UPDATEs) for the
            // timeout, and no call waiting on a backend; a stream the client
            // opened and left silent does not keep it.
            submitGoAway(NGHTTP2_NO_ERROR.rawValue, "idle for \(limits.idleTimeoutMillis) ms")
            close(closeReason, flushFirst: true)
            return
        }
        retryStalled(streams.values)
    }

    /// Graceful shutdown: GOAWAY (open calls finish, new streams are refused), then close.
    override func beginDrain() {
        guard !isClosed, !draining else { return }
        draining = true
        submitGoAway(NGHTTP2_NO_ERROR.rawValue, nil)
        flushSoon()
    }

    private func goAway(_ code: UInt32, _ reason: String) {
        draining = true
        submitGoAway(code, reason)
        flushSoon()
    }

    /// Queues a GOAWAY naming the last stream processed, with `reason` (if
    /// any) as its debug data and as the reason logged when the connection closes.
    private func submitGoAway(_ code: UInt32, _ reason: String?) {
        guard let session else { return }
        if let reason, closeReason == nil { closeReason = reason }
        let bytes = Array((reason ?? "").utf8)
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session), code, bytes, bytes.count)
    }

    /// Closes the socket (after sending what nghttp2 still has, if asked).
    override func close(_ reason: String?, flushFirst: Bool = false) {
        guard !isClosed else { return }
        if flushFirst, let session {
            var data: UnsafePointer<UInt8>?
            while true {
                let n = nghttp2_session_mem_send(session, &data)
                if n <= 0 { break }
                pendingOut.append(contentsOf: UnsafeBufferPointer(start: data, count: n))
            }
            _ = pendingOut.withUnsafeBytes { transport.write($0) }
        }
        let open = Array(streams.values)
        streams = [:]
        pendingOut = []
        closeSocket(reason, streams: open)
    }
}

/// Header fields laid out for nghttp2 (which copies them on submit), in
/// scratch space that lives only for the call: no heap allocation for a
/// typical response's few headers.
enum HeaderBlock {
    static func with(_ headers: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> Void) {
        var total = 0
        for (name, value) in headers { total += name.utf8.count + value.utf8.count }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(1, total)) { bytes in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(1, headers.count)) { nva in
                var at = 0
                func place(_ text: String) -> (UnsafeMutablePointer<UInt8>, Int) {
                    let start = at
                    at = bytes[start...].initialize(fromContentsOf: text.utf8)
                    return (bytes.baseAddress! + start, at - start)
                }
                for (i, (name, value)) in headers.enumerated() {
                    let (n, nl) = place(name), (v, vl) = place(value)
                    nva.initializeElement(
                        at: i, to: nghttp2_nv(name: n, value: v, namelen: nl, valuelen: vl, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
                }
                body(UnsafePointer(nva.baseAddress!), headers.count)
            }
        }
    }
}
