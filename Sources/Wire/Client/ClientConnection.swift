import Synchronization

/// The client side of one Wire connection.
final class ClientConnection: SocketConnection, @unchecked Sendable {
    // @unchecked: `connecting` and `clientNonce` are loop-thread only; `peerSettings`
    // is written once, on the loop, before the connection is ready (`readiness`
    // publishes it), and only read by the calls that come after.
    private enum Readiness {
        case pending([CheckedContinuation<Void, Error>])
        case ready
        case failed(RPCError)
    }

    let target: String
    private let secret: [UInt8]
    private let peerName: String
    private var connecting = true
    private let clientNonce = PeerAuthentication.nonce()
    private var serverNonce: [UInt8] = []
    private(set) var peerSettings = Croupier_Wire_V1_Settings()
    private let readiness = Mutex(Readiness.pending([]))
    private let streams = Mutex<(open: StreamTable<any ClientStreamReceiver>, nextID: UInt32, draining: Bool)>((StreamTable(), 1, false))
    /// Authenticated and neither draining nor failed: new calls may use it.
    private let usable = Atomic<Bool>(false)
    let limits: WireLimits

    init(fd: Int32, loop: EventLoop, target: String, secret: [UInt8], peerName: String, limits: WireLimits) {
        self.target = target
        self.secret = secret
        self.peerName = peerName
        self.limits = limits
        super.init(fd: fd, loop: loop, peer: target, decoder: FrameDecoder(maxFrameSize: limits.maxFrameSize))
    }

    // MARK: Readiness

    func waitReady() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            let outcome = readiness.withLock { r -> Result<Void, Error>? in
                switch r {
                case .ready: return .success(())
                case .failed(let e): return .failure(e)
                case .pending(var waiters):
                    waiters.append(c)
                    r = .pending(waiters)
                    return nil
                }
            }
            if let outcome { c.resume(with: outcome) }
        }
    }

    private func settle(_ outcome: Result<Void, RPCError>) {
        let waiters = readiness.withLock { r -> [CheckedContinuation<Void, Error>] in
            guard case .pending(let w) = r else { return [] }
            switch outcome {
            case .success:
                r = .ready
                usable.store(true, ordering: .releasing)
            case .failure(let e): r = .failed(e)
            }
            return w
        }
        for w in waiters { w.resume(with: outcome.mapError { $0 as Error }) }
    }

    /// Usable for new calls: authenticated, open, not draining.
    var acceptsCalls: Bool { usable.load(ordering: .acquiring) }

    /// Calls open on this connection now.
    var callsInFlight: Int { streams.withLock { $0.open.count } }

    // MARK: Calls

    /// Opens a stream and writes its first frames (built by `frames` for the
    /// new id) in one step under the write lock, so CALL_STARTs reach the wire
    /// in id order however many threads open calls at once. Nil when the
    /// connection no longer takes calls.
    func openStream<Stream: ClientStreamReceiver>(
        _ make: (UInt32) -> Stream, frames: (UInt32, inout [UInt8]) -> Void
    ) -> Stream? {
        var opened: Stream?
        write { buffer in
            opened = streams.withLock { s -> Stream? in
                guard !s.draining else { return nil }
                let id = s.nextID
                s.nextID += 2
                let stream = make(id)
                s.open.insert(stream, for: id)
                return stream
            }
            if let opened { frames(opened.id, &buffer) }
        }
        return opened
    }

    /// A stream for a general call (any kind), with flow control both ways.
    func openStream(frames: (UInt32, inout [UInt8]) -> Void) -> ClientStream? {
        openStream({ ClientStream(id: $0, connection: self, peer: peerSettings, ours: limits) }, frames: frames)
    }

    /// A request over the frame size the peer announced would cost the whole
    /// connection (the peer closes it): refuse it here, failing only this call.
    func checkRequestSize(_ message: [UInt8]) throws {
        let limit = peerSettings.maxMessageBytes
        guard message.count <= limit else {
            throw RPCError(.resourceExhausted, "a request message of \(message.count) bytes exceeds the peer's \(limit)-byte limit")
        }
    }

    func streamEnded(_ id: UInt32) {
        streams.withLock { _ = $0.open.removeValue(for: id) }
    }

    // MARK: Loop thread

    override func writable() {
        if connecting {
            connecting = false
            let err = Posix.socketError(fd)
            guard err == 0 else {
                fail(RPCError(.unavailable, "cannot connect to \(target): \(Posix.Failure(call: "connect", errno: err).description)"))
                return
            }
            write { buffer in
                buffer.append(contentsOf: WirePreface.bytes)
                Frame(.settings, message: limits.settings).encode(into: &buffer)
            }
        }
        super.writable()
    }

    override func handle(_ frame: FrameView) throws {
        switch frame.type {
        case .settings: peerSettings = try decode(frame)
        case .authChallenge:
            let challenge: Croupier_Wire_V1_AuthChallenge = try decode(frame)
            serverNonce = challenge.serverNonce
            let mac = PeerAuthentication.mac(secret: secret, label: PeerAuthentication.clientLabel, serverNonce, clientNonce)
            write(Frame(.authResponse, message: Croupier_Wire_V1_AuthResponse.with {
                $0.clientNonce = clientNonce
                $0.mac = mac
                $0.peerName = peerName
            }))
        case .authOK:
            let ok: Croupier_Wire_V1_AuthOk = try decode(frame)
            let expected = PeerAuthentication.mac(secret: secret, label: PeerAuthentication.serverLabel, clientNonce, serverNonce)
            guard secret.count >= PeerAuthentication.minimumSecretBytes, PeerAuthentication.equal(expected, ok.mac) else {
                throw RPCError(.unauthenticated, "\(target) did not prove the internal secret (or ours is shorter than \(PeerAuthentication.minimumSecretBytes) bytes)")
            }
            settle(.success(()))
        case .ping: write(Frame(.pong, payload: frame.bytes))
        case .pong: break
        case .goAway:
            let g: Croupier_Wire_V1_GoAway = try decode(frame)
            if g.reason == .noError {
                usable.store(false, ordering: .releasing)
                streams.withLock { $0.draining = true }
            } else {
                let code: StatusCode = g.reason == .unauthenticated ? .unauthenticated : .unavailable
                throw RPCError(code, "\(target) closed the connection: \(g.detail)")
            }
        case .responseHeaders:
            let h: Croupier_Wire_V1_ResponseHeaders = try decode(frame)
            stream(frame.streamID)?.received(headers: Metadata(wire: h.metadata))
        case .message:
            guard let s = stream(frame.streamID) else { return }
            guard s.received(message: frame.bytes) else {
                throw RPCError(.internal, "\(target) exceeded the flow-control window on stream \(frame.streamID)")
            }
        case .trailers:
            // OK with nothing else is an empty payload: no decoding needed.
            var (status, trailers): (RPCError?, Metadata) = (nil, Metadata())
            if !frame.payload.isEmpty {
                let t: Croupier_Wire_V1_Trailers = try decode(frame)
                trailers = Metadata(wire: t.metadata)
                if t.code != 0 {
                    status = RPCError(StatusCode(wireValue: Int(t.code)), t.message, metadata: trailers)
                    status?.notProcessed = t.notProcessed
                }
            }
            // Nothing follows TRAILERS on a stream: it leaves the table now.
            streams.withLock { $0.open.removeValue(for: frame.streamID) }?.received(status: status, trailers: trailers)
        case .windowUpdate:
            guard frame.payload.count == 4 else { throw RPCError(.internal, "malformed WINDOW_UPDATE from \(target)") }
            stream(frame.streamID)?.received(credit: Int(UInt32(bigEndian: frame.payload.loadUnaligned(as: UInt32.self))))
        case .callStart, .endStream, .cancel, .authResponse:
            throw RPCError(.internal, "\(target) sent \(frame.type), which only clients send")
        }
    }

    private func stream(_ id: UInt32) -> (any ClientStreamReceiver)? { streams.withLock { $0.open[id] } }

    private func decode<M: ProtoMessage>(_ frame: FrameView) throws -> M {
        do { return try M(buffer: frame.payload) } catch {
            throw RPCError(.internal, "\(target) sent a malformed \(frame.type): \(error)")
        }
    }

    override func fail(_ error: Error) {
        let status = (error as? RPCError) ?? RPCError(.unavailable, "connection to \(target) failed: \(error)")
        if !(error is RPCError) || status.code == .internal {
            write(Frame(.goAway, message: Croupier_Wire_V1_GoAway.with { $0.reason = .protocolError; $0.detail = status.message }))
        }
        settle(.failure(status))
        failStreams(status)
        closeAfterFlush()
    }

    override func didClose() {
        let status = RPCError(.unavailable, "connection to \(target) closed")
        settle(.failure(status))
        failStreams(status)
    }

    private func failStreams(_ status: RPCError) {
        usable.store(false, ordering: .releasing)
        let open = streams.withLock { s -> [any ClientStreamReceiver] in
            s.draining = true
            return s.open.removeAll()
        }
        for s in open { s.failed(status) }
    }
}

/// What the connection's reader delivers to one open call (loop thread).
protocol ClientStreamReceiver: AnyObject, Sendable {
    var id: UInt32 { get }
    func received(headers: Metadata)
    /// False if the message overruns the stream's flow-control window.
    func received(message: [UInt8]) -> Bool
    /// TRAILERS: `status` is nil for OK; `trailers` is the trailing
    /// metadata (a failing status carries it too).
    func received(status: RPCError?, trailers: Metadata)
    func received(credit: Int)
    /// The connection failed or closed with the call still open.
    func failed(_ status: RPCError)
}

/// One call seen from the client.
final class ClientStream: ClientStreamReceiver {
    let id: UInt32
    let flow: StreamFlow
    private let state = Mutex<(ended: Bool, localEnd: RPCError?, headers: Metadata?, trailers: Metadata?)>((false, nil, nil, nil))

    init(id: UInt32, connection: ClientConnection, peer: Croupier_Wire_V1_Settings, ours: WireLimits) {
        self.id = id
        flow = StreamFlow(stream: id, peer: peer, ours: ours, connection: connection)
    }

    /// Whether a request may still be sent: false once the server answered
    /// (more requests are moot); throws the status if the call ended here
    /// (deadline, cancellation).
    func acceptsRequests() throws -> Bool {
        let (ended, localEnd) = state.withLock { ($0.ended, $0.localEnd) }
        if let localEnd { throw localEnd }
        return !ended
    }

    func received(headers m: Metadata) { state.withLock { $0.headers = m } }

    func received(message: [UInt8]) -> Bool {
        guard flow.receive.received(message.count) else { return false }
        flow.inbound.push(message)
        return true
    }

    func received(credit: Int) { flow.send.credit(credit) }

    func failed(_ status: RPCError) { flow.inbound.abort(status) }
    var headers: Metadata { state.withLock { $0.headers ?? Metadata() } }
    var trailers: Metadata { state.withLock { $0.trailers ?? Metadata() } }

    /// TRAILERS arrived: the response stream ends with the status.
    func received(status: RPCError?, trailers: Metadata) {
        state.withLock { $0.ended = true; $0.trailers = trailers }
        flow.send.close(nil)  // requests after the server's answer are moot, not errors
        flow.inbound.finish(status)
    }

    /// Ended locally (deadline, cancel); returns false if the server had already ended it.
    func endLocally(_ status: RPCError) -> Bool {
        let first = state.withLock { s -> Bool in
            guard !s.ended else { return false }
            s.ended = true
            s.localEnd = status
            return true
        }
        if first {
            flow.send.close(status)
            flow.inbound.abort(status)
        }
        return first
    }
}
