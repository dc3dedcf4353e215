import Foundation
import Wire

/// One gRPC call through the gateway, start to end, on the connection's
/// event loop: authenticate, authorize, rate-limit, route, then pump
/// messages both ways between the HTTP/2 stream and the Wire call (bytes are
/// forwarded, never decoded), and end with the backend's status.
struct CallForwarder: Sendable {
    let gateway: Gateway.Core

    func run(_ stream: HTTP2Stream, _ request: GRPCRequest, correlationID: String) async {
        let core = gateway
        let started = ContinuousClock.now
        core.metrics.callStarted()
        var principal: String?
        var headers: [(String, String)] = [("x-correlation-id", correlationID)]
        let status: RPCError?
        do {
            let target = try core.router.resolve(service: request.service, method: request.method, path: request.path)
            let claims = try authorize(request)
            principal = claims?.subject
            try rateLimit(request, principal: claims?.subject ?? "anonymous@" + (stream.connection.peer.split(separator: ":").first.map(String.init) ?? ""))
            var metadata = request.metadata
            metadata.set("x-correlation-id", correlationID)
            if let claims {
                metadata.set("x-croupier-principal", claims.subject)
                metadata.set("x-croupier-permissions", claims.permissions.joined(separator: ","))
                if !claims.roles.isEmpty { metadata.set("x-croupier-roles", claims.roles.joined(separator: ",")) }
            }
            let options = CallOptions(deadline: request.timeout.map { .now + $0 }, metadata: metadata)
            let base = headers
            let (trailers, unsent) = target.method.kind == .unary
                ? try await forwardUnary(stream, target, options, headers: base)
                : try await target.channel.withCall(target.method, options: options) { call in
                    try await pump(stream, call, headers: base)
                }
            headers = unsent
            status = nil
            stream.finish(trailers: GRPCResponseHeaders.trailers(code: .ok, message: "", metadata: trailers), headers: headers)
        } catch {
            let e = (error as? RPCError) ?? (error is CancellationError ? RPCError(.cancelled, "the call was cancelled") : RPCError(.unknown, "\(error)"))
            status = e
            stream.finish(trailers: GRPCResponseHeaders.trailers(code: e.code, message: e.message, metadata: e.metadata), headers: headers)
        }
        let elapsed = (ContinuousClock.now - started).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        core.metrics.callEnded(method: request.path, status: status?.code ?? .ok, seconds: seconds)
        core.accessLog.call(.init(
            correlationID: correlationID, principal: principal, method: request.path, status: (status?.code ?? .ok).name,
            message: status?.message ?? "", durationMillis: seconds * 1000, bytesIn: stream.bytesIn, bytesOut: stream.bytesOut,
            peer: stream.connection.peer))
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
        let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        if let waitMillis = gateway.limiter.take(principal: principal, method: request.path, now: now) {
            gateway.metrics.rateLimited(method: request.path)
            var trailers = Metadata()
            trailers.add("retry-after-ms", String(waitMillis))
            throw RPCError(.resourceExhausted, "rate limit for \(request.path) exceeded; retry in \(waitMillis) ms", metadata: trailers)
        }
    }

    /// A unary method: the one request is read whole, then one Wire round
    /// trip (the channel's unary path) — no message pumps, no child tasks.
    /// Returns the trailers and the headers still to send (none).
    private func forwardUnary(_ stream: HTTP2Stream, _ target: Router.Target, _ options: CallOptions, headers: [(String, String)])
        async throws -> (Metadata, [(String, String)])
    {
        guard let request = try await stream.nextRequest() else {
            throw RPCError(.invalidArgument, "\(target.method) expects one request message, got none")
        }
        guard try await stream.nextRequest() == nil else {
            throw RPCError(.invalidArgument, "\(target.method) expects one request message, got more")
        }
        let reply = try await target.channel.unaryBytes(target.method, request, options: options)
        stream.sendHeaders(headers + GRPCResponseHeaders.fields(reply.headers))
        try await stream.sendMessage(reply.message)
        return (reply.trailers, [])
    }

    /// Requests client → backend and responses backend → client until the
    /// backend ends the call; returns its trailers. A request-side failure
    /// (bad framing, oversized message, client reset) ends the call with that status.
    ///
    /// Also returns the response headers still to send (a trailers-only
    /// response when no message came back).
    private func pump(_ stream: HTTP2Stream, _ call: any RawClientCall, headers baseHeaders: [(String, String)]) async throws
        -> (Metadata, [(String, String)])
    {
        let unsent = try await withThrowingTaskGroup(of: [(String, String)]?.self) { group in
            group.addTask {
                while let m = try await stream.nextRequest() { try await call.send(m) }
                try await call.finishSending()
                return nil
            }
            group.addTask {
                var started = false
                while let m = try await call.receive() {
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
