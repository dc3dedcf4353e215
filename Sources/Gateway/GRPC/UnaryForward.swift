import Wire

/// A unary call forwarded with no task (loop thread only): the request is
/// taken whole when the client half-closes, sent with the channel's
/// `startUnary`, and answered from its completion. A client reset before the
/// request is complete, or while a JSON message is being converted, ends the
/// call at once; while the backend has it, it cancels the backend call, whose
/// completion then ends it. Exactly one ending either way.
final class UnaryForward: @unchecked Sendable {
    // @unchecked: `phase` is touched only on the stream's loop thread (HTTP/2
    // callbacks, and completions, which are brought to that loop).
    private enum Phase {
        case awaitingRequest
        /// A JSON message is being converted (off the loop if it is large).
        case converting
        case calling(UnaryCallHandle)
        case ended
    }

    private let forwarder: CallForwarder
    private let admitted: CallForwarder.Admitted
    /// A JSON call: its message types. The request is transcoded before it is
    /// sent (a body that does not map is INVALID_ARGUMENT and reaches no
    /// backend), the response after it comes back.
    private let json: ProtoSchema.Method?
    private var phase = Phase.awaitingRequest

    init(forwarder: CallForwarder, admitted: CallForwarder.Admitted, json: ProtoSchema.Method? = nil) {
        self.forwarder = forwarder
        self.admitted = admitted
        self.json = json
    }

    func start() {
        let stream = forwarder.stream
        stream.onReset = { [self] in reset() }
        stream.onWholeRequest = { [self] in requestEnded($0) }
    }

    private func requestEnded(_ request: Result<[[UInt8]], RPCError>) {
        guard case .awaitingRequest = phase else { return }
        let method = admitted.target.method
        let messages: [[UInt8]]
        switch request {
        case .failure(let e): return end(e)
        case .success(let m): messages = m
        }
        guard messages.count == 1 else {
            return end(RPCError(.invalidArgument, "\(method) expects one request message, got \(messages.isEmpty ? "none" : "more")"))
        }
        guard let json else { return call(messages[0]) }
        phase = .converting
        forwarder.gateway.json.binary(fromJSON: messages[0], type: json.input, on: forwarder.stream.loop) { [self] converted in
            guard case .converting = phase else { return }  // the client went away meanwhile
            switch converted {
            case .success(let message):
                phase = .awaitingRequest
                call(message)
            case .failure(let e):
                end(e)
            }
        }
    }

    private func call(_ message: [UInt8]) {
        let method = admitted.target.method
        let loop = forwarder.stream.loop
        let handle = admitted.target.channel.startUnary(method, message, options: admitted.options) { [self] outcome in
            // A Wire backend completes on this loop; the gateway's in-process services do not.
            if loop.inLoop { answer(outcome) } else { loop.execute { self.answer(outcome) } }
        }
        if case .awaitingRequest = phase { phase = .calling(handle) }  // unless it already ended
    }

    private func reset() {
        switch phase {
        case .awaitingRequest, .converting: end(RPCError(.cancelled, "the client cancelled the call"))
        case .calling(let handle): handle.cancel()
        case .ended: break
        }
    }

    private func answer(_ outcome: Result<UnaryResponse, RPCError>) {
        switch outcome {
        case .success(let reply) where json != nil:
            guard case .calling = phase else { return }
            phase = .converting
            forwarder.gateway.json.json(fromBinary: reply.message, type: json!.output, on: forwarder.stream.loop) { [self] converted in
                guard case .converting = phase else { return }  // the client went away meanwhile
                switch converted {
                case .success(let body): deliver(reply, message: body)
                case .failure(let e): end(e)
                }
            }
        case .success(let reply):
            deliver(reply, message: reply.message)
        case .failure(let e):
            end(e)
        }
    }

    /// The answer: a JSON call's whole body, or the message (binary, or JSON for gRPC-Web+json) and trailers.
    private func deliver(_ reply: UnaryResponse, message: [UInt8]) {
        let headers = forwarder.baseHeaders + GRPCResponseHeaders.fields(reply.headers)
        if forwarder.request.framing == .json { return end(nil, trailers: reply.trailers, headers: headers, jsonBody: message) }
        let stream = forwarder.stream
        stream.sendHeaders(headers)
        do { try stream.queueMessage(message) } catch { return end(.from(error)) }
        end(nil, trailers: reply.trailers)
    }

    private func end(_ status: RPCError?, trailers: Metadata = Metadata(), headers: [(String, String)]? = nil, jsonBody: [UInt8]? = nil) {
        if case .ended = phase { return }
        phase = .ended
        forwarder.stream.onReset = nil
        forwarder.end(principal: admitted.principal, status: status, trailers: trailers, headers: headers, jsonBody: jsonBody)
    }
}
