import Synchronization

/// One call on a server connection. Exactly one TRAILERS (or none, after a
/// CANCEL) ends it: `finish` is first-wins between the handler, the deadline
/// timer and cancellation.
final class ServerStream: Sendable {
    let id: UInt32
    let handler: RPCHandler
    let context: ServerContext
    var kind: CallKind { handler.method.kind }
    let flow: StreamFlow
    /// The largest response message the peer accepts (its SETTINGS frame size).
    let maxMessageBytes: Int
    private let connection: ServerConnection
    private let response: ResponseMetadata
    private let state = Mutex<(finished: Bool, pendingResponse: [UInt8]?, task: Task<Void, Never>?, timer: Task<Void, Never>?)>(
        (false, nil, nil, nil))

    init(
        id: UInt32, handler: RPCHandler, context: ServerContext, connection: ServerConnection,
        peer: Croupier_Wire_V1_Settings, ours: WireLimits
    ) {
        self.id = id
        self.handler = handler
        self.context = context
        self.connection = connection
        self.response = context.response
        maxMessageBytes = Int(peer.maxFrameSize == 0 ? WireLimits().maxFrameSize : peer.maxFrameSize)
        flow = StreamFlow(stream: id, peer: peer, ours: ours, connection: connection)
    }

    func attach(_ task: Task<Void, Never>) {
        let cancelled = state.withLock { s -> Bool in
            s.task = task
            return s.finished
        }
        if cancelled { task.cancel() }
    }

    /// Ends the call with DEADLINE_EXCEEDED at `deadline`, whether or not its handler has started.
    func startDeadlineTimer(_ deadline: ContinuousClock.Instant) {
        let timer = Task { [self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled { finish(RPCError(.deadlineExceeded, "deadline exceeded")) }
        }
        let ended = state.withLock { s -> Bool in
            s.timer = timer
            return s.finished
        }
        if ended { timer.cancel() }
    }

    var isFinished: Bool { state.withLock { $0.finished } }

    /// Sends a response message. Single-response calls hold it back so it
    /// leaves together with the TRAILERS in one write.
    func sendResponse(_ bytes: [UInt8]) async throws {
        guard !isFinished else { throw CancellationError() }
        guard bytes.count <= maxMessageBytes else {
            throw RPCError(.resourceExhausted, "a response message of \(bytes.count) bytes exceeds the peer's \(maxMessageBytes)-byte limit")
        }
        try await flow.send.acquire(bytes.count)
        if !kind.serverStreams {
            let accepted = state.withLock { s -> Bool in
                guard !s.finished, s.pendingResponse == nil else { return false }
                s.pendingResponse = bytes
                return true
            }
            guard accepted else { throw RPCError(.internal, "a single-response call sent a second response") }
            return
        }
        let headers = response.takeHeadersToSend()
        connection.write { buffer in
            appendHeaders(headers, to: &buffer)
            Frame.appendHeader(type: .message, stream: id, length: bytes.count, to: &buffer)
            buffer.append(contentsOf: bytes)
        }
    }

    private func appendHeaders(_ headers: Metadata?, to buffer: inout [UInt8]) {
        guard let headers else { return }
        Frame(.responseHeaders, stream: id, message: Croupier_Wire_V1_ResponseHeaders.with { $0.metadata = headers.wireEntries })
            .encode(into: &buffer)
    }

    /// Ends the call with `status` (nil = OK); false if it had already ended.
    @discardableResult
    func finish(_ status: RPCError?) -> Bool {
        let (first, pending, task, timer) = state.withLock { s -> (Bool, [UInt8]?, Task<Void, Never>?, Task<Void, Never>?) in
            guard !s.finished else { return (false, nil, nil, nil) }
            s.finished = true
            defer { s.pendingResponse = nil }
            return (true, s.pendingResponse, s.task, s.timer)
        }
        guard first else { return false }
        timer?.cancel()
        var metadata = response.trailers
        if let status { for e in status.metadata { metadata.append(e) } }
        let trailers = Croupier_Wire_V1_Trailers.with {
            if let status {
                $0.code = Int32(status.code.rawValue)
                $0.message = status.message
            }
            $0.metadata = metadata.wireEntries
        }
        let headers = response.takeHeadersToSend()
        connection.write { buffer in
            appendHeaders(headers, to: &buffer)
            if let pending, status == nil {
                Frame.appendHeader(type: .message, stream: id, length: pending.count, to: &buffer)
                buffer.append(contentsOf: pending)
            }
            Frame(.trailers, stream: id, message: trailers).encode(into: &buffer)
        }
        if status != nil { task?.cancel() }
        close()
        return true
    }

    /// The client cancelled: stop the handler, send nothing more.
    func cancelByPeer() {
        let (task, timer) = state.withLock { s -> (Task<Void, Never>?, Task<Void, Never>?) in
            guard !s.finished else { return (nil, nil) }
            s.finished = true
            return (s.task, s.timer)
        }
        task?.cancel()
        timer?.cancel()
        close()
    }

    private func close() {
        flow.inbound.abort(CancellationError())
        flow.send.close(CancellationError())
        connection.streamEnded(id)
    }
}
