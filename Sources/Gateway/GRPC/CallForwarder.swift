import Foundation
import Wire

/// One gRPC call through the gateway, start to end, on the connection's
/// event loop: authenticate, authorize, rate-limit, route, then forward the
/// bytes (never decoded) and end with the backend's status.
///
/// A unary call is forwarded with no task at all: its request is taken
/// whole when the client half-closes, and the channel's `startUnary`
/// completion answers on this loop (`UnaryForward`). Streaming calls run as
/// a task that pumps messages both ways.
struct CallForwarder: Sendable {
    let gateway: Gateway.Core
    let stream: CallStream
    let request: GRPCRequest
    let correlationID: String
    /// The caller's trace continued, or a new one: sent to the backend, named in the access log.
    let trace: TraceContext
    /// The caller sent a valid traceparent (so its tracestate goes on with it).
    let continuesCallerTrace: Bool
    let started = ContinuousClock.now

    init(gateway: Gateway.Core, stream: CallStream, request: GRPCRequest, correlationID: String) {
        self.gateway = gateway
        self.stream = stream
        self.request = request
        self.correlationID = correlationID
        (trace, continuesCallerTrace) = TraceContext.continuing(request.metadata[TraceContext.header])
    }

    /// What an admitted call needs: where it goes, with which options, for whom.
    struct Admitted {
        let target: Router.Target
        let options: CallOptions
        let principal: String?
    }

    /// Starts forwarding (loop thread, request headers complete).
    func start() {
        gateway.metrics.callStarted()
        if request.framing == .json { stream.rawBody = true }  // before any DATA, whatever the call's fate
        let admitted: Admitted
        do {
            admitted = try admit()
        } catch {
            return end(principal: nil, status: .from(error))
        }
        var json: ProtoSchema.Method?
        if request.framing == .json || request.framing.framesJSON {
            json = gateway.json.mapping.schema.methods[request.path]
            guard json != nil else {
                return end(principal: admitted.principal, status: RPCError(.unimplemented, "\(request.path) has no descriptor to map JSON with"))
            }
            guard request.framing != .json || admitted.target.method.kind == .unary else {
                return end(principal: admitted.principal, status: RPCError(
                    .unimplemented, "\(request.path) streams: JSON calls are unary only (use gRPC-Web, +json or +proto, for streams)"))
            }
        }
        if admitted.target.method.kind == .unary {
            UnaryForward(forwarder: self, admitted: admitted, json: json).start()
        } else {
            let task = Task(executorPreference: stream.loop) { await forwardStreaming(admitted, json: json) }
            stream.onReset = { task.cancel() }
        }
    }

    /// The checks every call passes before it is forwarded, and the metadata it carries.
    private func admit() throws -> Admitted {
        let target = try gateway.router.resolve(service: request.service, method: request.method, path: request.path)
        let claims = try authorize(request)
        try rateLimit(request, principal: claims?.subject ?? stream.connection.anonymousPrincipal)
        var metadata = request.metadata
        metadata.set("x-correlation-id", correlationID)
        metadata.set(TraceContext.header, trace.traceparent)
        // The spec: a tracestate is kept only with the valid traceparent it came with.
        if !continuesCallerTrace { metadata.remove(TraceContext.stateHeader) }
        if let claims {
            metadata.set(ForwardedCaller.principalKey, claims.subject)
            metadata.set(ForwardedCaller.permissionsKey, claims.permissions.joined(separator: ","))
            if !claims.roles.isEmpty { metadata.set("x-croupier-roles", claims.roles.joined(separator: ",")) }
        }
        return Admitted(
            target: target, options: CallOptions(deadline: request.timeout.map { .now + $0 }, metadata: metadata), principal: claims?.subject)
    }

    /// The response headers every answer carries.
    var baseHeaders: [(String, String)] {
        gateway.cors.origins.isEmpty ? [("x-correlation-id", correlationID)]  // no CORS: one allocation, as before
            : [("x-correlation-id", correlationID)] + gateway.cors.responseHeaders(origin: request.origin)
    }

    /// Ends the call: the trailers (with `headers` first if the response has
    /// not started), then metrics and the access-log line. A JSON call's
    /// answer is `jsonBody` (its response message) or its error, whole.
    func end(
        principal: String?, status: RPCError?, trailers: Metadata = Metadata(), headers: [(String, String)]? = nil, jsonBody: [UInt8]? = nil
    ) {
        let headers = headers ?? baseHeaders
        if request.framing == .json {
            if let status {
                JSONResponse.fail(stream, status, headers: headers)
            } else {
                stream.respondHTTP(
                    status: 200, contentType: "application/json", body: jsonBody ?? [], headers: headers + GRPCResponseHeaders.fields(trailers))
            }
        } else if let status {
            stream.finish(trailers: GRPCResponseHeaders.trailers(code: status.code, message: status.message, metadata: status.metadata), headers: headers)
        } else {
            stream.finish(trailers: GRPCResponseHeaders.trailers(code: .ok, message: "", metadata: trailers), headers: headers)
        }
        let elapsed = (ContinuousClock.now - started).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        gateway.metrics.callEnded(method: request.path, status: status?.code ?? .ok, seconds: seconds)
        gateway.accessLog.call(.init(
            request: RequestContext(correlationID: correlationID, trace: trace), principal: principal, method: request.path, status: (status?.code ?? .ok).name,
            message: status?.message ?? "", durationMillis: seconds * 1000, bytesIn: stream.bytesIn, bytesOut: stream.bytesOut,
            peer: stream.connection.peer))
    }

    /// A streaming call: messages both ways until the backend ends it (each
    /// converted from and to proto3 JSON on the way, for gRPC-Web+json).
    private func forwardStreaming(_ admitted: Admitted, json: ProtoSchema.Method?) async {
        do {
            let (trailers, unsent) = try await admitted.target.channel.withCall(admitted.target.method, options: admitted.options) { call in
                try await pump(call, json: json)
            }
            end(principal: admitted.principal, status: nil, trailers: trailers, headers: unsent)
        } catch {
            end(principal: admitted.principal, status: .from(error))
        }
    }

    /// The caller's claims (nil for a public method called without a token).
    /// A token sent to a public method must still be valid.
    private func authorize(_ request: GRPCRequest) throws -> JWT.Claims? {
        let core = gateway
        let requirement = core.policy.requirement(path: request.path, service: request.service)
        guard let header = request.authorization else {
            if requirement == .none { return nil }
            core.metrics.authFailed(reason: "missing_token")
            throw RPCError(.unauthenticated, "missing authorization: Bearer token")
        }
        guard header.hasPrefix("Bearer ") else {
            core.metrics.authFailed(reason: "malformed_header")
            throw RPCError(.unauthenticated, "authorization must be 'Bearer <token>'")
        }
        let claims: JWT.Claims
        do {
            claims = try core.tokens.claims(String(header.dropFirst(7)), now: Int64(Date().timeIntervalSince1970))
        } catch {
            core.metrics.authFailed(reason: "invalid_token")
            throw RPCError(.unauthenticated, error.description)
        }
        if case .permission(let needed) = requirement, !claims.permissions.contains(needed) {
            core.metrics.authFailed(reason: "permission_denied")
            throw RPCError(.permissionDenied, "\(request.path) needs permission \(needed); \(claims.subject) does not have it")
        }
        return claims
    }

    private func rateLimit(_ request: GRPCRequest, principal: String) throws {
        if let waitMillis = gateway.limiter.take(principal: principal, method: request.path, nowMillis: LoopClock.nowMillis()) {
            gateway.metrics.rateLimited(method: request.path)
            throw SlidingWindow.refusal("rate limit for \(request.path) exceeded", retryAfterMillis: waitMillis)
        }
    }

    /// Requests client → backend and responses backend → client until the
    /// backend ends the call; returns its trailers. A request-side failure
    /// (bad framing, oversized message, client reset) ends the call with that status.
    ///
    /// Also returns the response headers still to send (a trailers-only
    /// response when no message came back).
    private func pump(_ call: any RawClientCall, json: ProtoSchema.Method?) async throws -> (Metadata, [(String, String)]) {
        let (stream, baseHeaders, transcoder) = (stream, baseHeaders, gateway.json)
        let unsent = try await withThrowingTaskGroup(of: [(String, String)]?.self) { group in
            group.addTask {
                while var m = try await stream.nextRequest() {
                    if let json { m = try await transcoder.binary(fromJSON: m, type: json.input, on: stream.loop) }
                    try await call.send(m)
                }
                try await call.finishSending()
                return nil
            }
            group.addTask {
                var started = false
                while var m = try await call.receive() {
                    if let json { m = try await transcoder.json(fromBinary: m, type: json.output, on: stream.loop) }
                    if !started {
                        started = true
                        stream.sendHeaders(baseHeaders + GRPCResponseHeaders.fields(call.responseHeaders))
                    }
                    try await stream.sendMessage(m)
                }
                return started ? [] : baseHeaders + GRPCResponseHeaders.fields(call.responseHeaders)
            }
            while let result = try await group.next() {
                if let h = result {
                    group.cancelAll()
                    return h
                }
            }
            return []
        }
        return (call.responseTrailers, unsent)
    }
}
