import Synchronization

/// The server side of one Wire connection: handshake, authentication, call
/// dispatch, limits. Frame handling runs on the loop thread; handlers run as
/// tasks and write their responses directly.
final class ServerConnection: SocketConnection, @unchecked Sendable {
    // @unchecked: the `var`s below are loop-thread only; `streams` is behind a Mutex.
    private enum Phase { case handshake, active }

    let server: WireServer.Shared
    private var phase = Phase.handshake
    private let serverNonce = PeerAuthentication.nonce()
    private var peerSettings = Croupier_Wire_V1_Settings()
    /// The largest message the peer accepts, from its SETTINGS.
    private(set) var peerMaxMessage = Croupier_Wire_V1_Settings().maxMessageBytes
    private var peerName = ""
    /// How handlers see the peer, e.g. `gateway@127.0.0.1:53122`; fixed once authenticated.
    private(set) var peerDescription = ""
    private var lastStreamID: UInt32 = 0
    private let streams = Mutex<(open: StreamTable<ServerCall>, draining: Bool)>((StreamTable(), false))
    private let createdAt = LoopClock.nowMillis()
    private var lastActivity = LoopClock.nowMillis()
    private var pingWindowStart: Int64 = 0
    private var pingsInWindow = 0
    private lazy var starter = HandlerStarter(loop: loop)

    init(fd: Int32, loop: EventLoop, peer: String, server: WireServer.Shared) {
        self.server = server
        super.init(fd: fd, loop: loop, peer: peer, decoder: FrameDecoder(maxFrameSize: server.limits.maxFrameSize))
        write { buffer in
            buffer.append(contentsOf: WirePreface.bytes)
            Frame(.settings, message: server.limits.settings).encode(into: &buffer)
            Frame(.authChallenge, message: Croupier_Wire_V1_AuthChallenge.with { $0.serverNonce = serverNonce }).encode(into: &buffer)
        }
    }

    // MARK: Frames (loop thread)

    override func handle(_ frame: FrameView) throws {
        lastActivity = loop.iterationMillis
        switch (phase, frame.type) {
        case (_, .ping): try ping(frame)
        case (_, .pong): break
        case (_, .goAway): beginDrain(announce: false)
        case (.handshake, .settings):
            peerSettings = try decode(frame)
            peerMaxMessage = peerSettings.maxMessageBytes
        case (.handshake, .authResponse): try authenticate(try decode(frame))
        case (.handshake, _):
            throw WireProtocolError(.protocolError, "\(frame.type) before authentication completed")
        case (.active, .callStart): try start(frame)
        case (.active, .message): try message(frame)
        case (.active, .endStream): try stream(frame)?.receivedEnd()
        case (.active, .cancel): try stream(frame)?.cancelByPeer()
        case (.active, .windowUpdate):
            guard frame.payload.count == 4 else { throw WireProtocolError(.protocolError, "WINDOW_UPDATE payload must be 4 bytes") }
            let n = UInt32(bigEndian: frame.payload.loadUnaligned(as: UInt32.self))
            guard n > 0 else { throw WireProtocolError(.protocolError, "WINDOW_UPDATE increment must be positive") }
            try stream(frame)?.received(credit: Int(n))
        case (.active, let t):
            throw WireProtocolError(.protocolError, "a client may not send \(t)")
        }
    }

    private func decode<M: ProtoMessage>(_ frame: FrameView) throws -> M {
        do { return try M(buffer: frame.payload) } catch {
            throw WireProtocolError(.protocolError, "\(frame.type) payload is not a valid \(M.protoMessageName): \(error)")
        }
    }

    private func authenticate(_ response: Croupier_Wire_V1_AuthResponse) throws {
        let expected = PeerAuthentication.mac(
            secret: server.secret, label: PeerAuthentication.clientLabel, serverNonce, response.clientNonce)
        guard server.secret.count >= PeerAuthentication.minimumSecretBytes, response.clientNonce.count == 32,
            PeerAuthentication.equal(expected, response.mac)
        else {
            throw WireProtocolError(.unauthenticated, "peer did not prove the internal secret")
        }
        peerName = response.peerName
        peerDescription = peerName.isEmpty ? peer : "\(peerName)@\(peer)"
        phase = .active
        let proof = PeerAuthentication.mac(secret: server.secret, label: PeerAuthentication.serverLabel, response.clientNonce, serverNonce)
        write(Frame(.authOK, message: Croupier_Wire_V1_AuthOk.with { $0.mac = proof }))
    }

    private func ping(_ frame: FrameView) throws {
        guard frame.payload.count == 8 else { throw WireProtocolError(.protocolError, "PING payload must be 8 bytes") }
        let now = LoopClock.nowMillis()
        if now - pingWindowStart >= 1000 {
            pingWindowStart = now
            pingsInWindow = 0
        }
        pingsInWindow += 1
        guard pingsInWindow <= server.limits.maxPingsPerSecond else {
            throw WireProtocolError(.enhanceYourCalm, "more than \(server.limits.maxPingsPerSecond) PINGs in one second")
        }
        write(Frame(.pong, payload: frame.bytes))
    }

    /// The open stream a frame is for; nil if it already ended; an error if it never existed.
    private func stream(_ frame: FrameView) throws -> ServerCall? {
        guard frame.streamID != 0, frame.streamID <= lastStreamID else {
            throw WireProtocolError(.protocolError, "\(frame.type) for stream \(frame.streamID), which was never started")
        }
        return streams.withLock { $0.open[frame.streamID] }
    }

    private func message(_ frame: FrameView) throws {
        guard let s = try stream(frame) else { return }
        guard s.received(message: frame.bytes) else {
            throw WireProtocolError(.flowControl, "stream \(frame.streamID) exceeded its flow-control window")
        }
    }

    private func start(_ frame: FrameView) throws {
        let id = frame.streamID
        guard id != 0, id > lastStreamID else {
            throw WireProtocolError(.protocolError, "CALL_START reuses stream id \(id) (last was \(lastStreamID))")
        }
        lastStreamID = id
        let callStart = try parseCallStart(frame)
        guard let entry = callStart.entry else {
            return refuse(id, RPCError(.unimplemented, "method \(callStart.unknownMethod) is not implemented by \(server.name)"))
        }
        let deadline: Int64? = callStart.timeoutMicros > 0
            ? LoopClock.now() &+ Int64(clamping: min(callStart.timeoutMicros, WireLimits.longestTimeoutMicros)) &* 1000 : nil
        let metadata = callStart.metadata
        let call: ServerCall
        if entry.method.kind == .unary, let body = entry.unary {
            call = UnaryServerCall(id: id, method: entry.method, metadata: metadata, deadline: deadline, connection: self, body: body)
        } else {
            call = StreamingServerCall(
                id: id, handler: entry.handler, metadata: metadata, deadline: deadline, connection: self, peer: peerSettings,
                ours: server.limits)
        }
        if let refusal = admit(call) { return refuse(id, refusal) }
        if let deadline { call.startDeadlineTimer(atNanos: deadline) }
        // A handler that reads a stream of requests starts now; one that takes
        // a single request once it is complete (END_STREAM). Either way it
        // runs after this read's frames, and usually ends without suspending.
        if entry.method.kind.clientStreams { handlerDue(call) }
    }

    /// Registers `call` as open; the refusal if the connection is draining or full.
    private func admit(_ call: ServerCall) -> RPCError? {
        let limit = Int(server.limits.maxConcurrentStreams)
        return streams.withLock { s -> RPCError? in
            if s.draining { return RPCError(.unavailable, "server is shutting down; retry on another connection") }
            if s.open.count >= limit { return RPCError(.resourceExhausted, "more than \(limit) concurrent calls on one connection") }
            s.open.insert(call, for: call.id)
            return nil
        }
    }

    /// `call`'s handler should start: it runs once the frames of this read are handled.
    func handlerDue(_ call: ServerCall) { starter.add(call) }

    override func framesHandled() { starter.startDue() }

    /// The fields of a CALL_START, read in place: the method is looked up by
    /// its bytes; its name is only made into a String when it is unknown.
    private func parseCallStart(_ frame: FrameView) throws -> (entry: MethodTable.Entry?, unknownMethod: String, timeoutMicros: UInt64, metadata: Metadata) {
        do {
            var reader = ProtoReader(buffer: frame.payload)
            var entry: MethodTable.Entry?
            var method = ""
            var timeout: UInt64 = 0
            var metadata = Metadata()
            while let tag = try reader.nextTag() {
                switch (tag.fieldNumber, tag.wireType) {
                case (1, .lengthDelimited):
                    let n = try reader.readLength()
                    let path = UnsafeRawBufferPointer(start: reader.base + reader.position, count: n)
                    entry = server.methods.lookup(path)
                    if entry == nil {
                        guard let name = String(validating: path.bindMemory(to: UInt8.self), as: UTF8.self) else {
                            throw ProtoDecodingError.invalidUTF8(fieldNumber: 1)
                        }
                        method = name
                    }
                    reader.position += n
                case (2, .varint): timeout = try reader.readVarint()
                case (3, .lengthDelimited):
                    try reader.readNested { r in try metadata.appendWireEntry(&r) }
                default: try reader.skipValue(tag)
                }
            }
            return (entry, method, timeout, metadata)
        } catch {
            throw WireProtocolError(.protocolError, "CALL_START payload is not a valid croupier.wire.v1.CallStart: \(error)")
        }
    }

    /// Ends a call no handler saw, saying so (a client may send it elsewhere).
    private func refuse(_ id: UInt32, _ status: RPCError) {
        write { ServerCall.appendTrailers(status, metadata: status.metadata, stream: id, notProcessed: true, to: &$0) }
    }

    // MARK: Lifecycle

    /// Called by a stream when it ended (any thread).
    func streamEnded(_ id: UInt32) {
        let closeNow = streams.withLock { s -> Bool in
            s.open.removeValue(for: id)
            return s.draining && s.open.isEmpty
        }
        if closeNow { closeAfterFlush() }
    }

    /// Graceful drain: refuse new calls, finish open ones, then close.
    func beginDrain(announce: Bool = true) {
        let empty = streams.withLock { s -> Bool in
            s.draining = true
            return s.open.isEmpty
        }
        if announce {
            write(Frame(.goAway, message: Croupier_Wire_V1_GoAway.with {
                $0.lastStreamId = lastStreamID
                $0.reason = .noError
                $0.detail = "server is shutting down"
            }))
        }
        if empty { closeAfterFlush() }
    }

    override func tick(nowMillis now: Int64) {
        if phase == .handshake && now - createdAt > server.limits.handshakeTimeoutMillis {
            fail(WireProtocolError(.timeout, "authentication did not complete within \(server.limits.handshakeTimeoutMillis) ms"))
        } else if phase == .active && now - lastActivity > server.limits.idleTimeoutMillis
            && streams.withLock({ $0.open.isEmpty })
        {
            fail(WireProtocolError(.timeout, "idle for \(server.limits.idleTimeoutMillis) ms"))
        }
    }

    override func fail(_ error: Error) {
        let reason: Croupier_Wire_V1_GoAwayReason
        let detail: String
        switch error {
        case let e as WireProtocolError: (reason, detail) = (e.reason, e.detail)
        case let e as FrameError: (reason, detail) = (e.goAwayReason, e.description)
        default: (reason, detail) = (.protocolError, "\(error)")
        }
        server.log("closing connection from \(peer): \(detail)")
        write(Frame(.goAway, message: Croupier_Wire_V1_GoAway.with {
            $0.lastStreamId = lastStreamID
            $0.reason = reason
            $0.detail = detail
        }))
        closeAfterFlush()
    }

    override func didClose() {
        let open = streams.withLock { $0.open.removeAll() }
        for s in open { s.cancelByPeer() }
        server.connectionClosed(self)
    }
}

/// A connection-level protocol violation, reported in GOAWAY.
struct WireProtocolError: Error, CustomStringConvertible {
    let reason: Croupier_Wire_V1_GoAwayReason
    let detail: String
    init(_ reason: Croupier_Wire_V1_GoAwayReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
    var description: String { detail }
}
