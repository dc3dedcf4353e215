/// grpc.testing.TestService as the gRPC interop tests expect it: payloads of
/// the requested sizes (zero bytes, as the reference servers send; a
/// negative size is INVALID_ARGUMENT, one past the message limit
/// RESOURCE_EXHAUSTED), the requested status echoed, streams paced by
/// `interval_us`, the principal (`x-croupier-principal`, else the caller's
/// `x-user`) echoed as the username and its permissions as the oauth scope,
/// `x-grpc-test-echo-initial` echoed as a header and
/// `x-grpc-test-echo-trailing-bin` as a trailer (interop `custom_metadata`).
/// Served by `croupier serve interop` and used by the conformance tests.
public struct InteropTestService: Grpc_Testing_TestService.ServiceProtocol {
    public init() {}

    public func emptyCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        Grpc_Testing_Empty()
    }

    static let echoInitial = "x-grpc-test-echo-initial"
    static let echoTrailing = "x-grpc-test-echo-trailing-bin"

    private func echoMetadata(_ context: ServerContext) {
        var headers = Metadata()
        for v in context.metadata.values(Self.echoInitial) { headers.append((Self.echoInitial, v)) }
        var trailers = Metadata()
        for v in context.metadata.values(Self.echoTrailing) { trailers.append((Self.echoTrailing, v)) }
        context.response.setHeaders(headers)
        context.response.setTrailers(trailers)
    }

    /// The largest payload asked for that is served: a response must fit the
    /// 4 MiB message limit with room for its other fields.
    public static let maxPayloadBytes = 4 * 1024 * 1024 - 1024

    /// A payload of `size` zero bytes, as the reference servers send;
    /// INVALID_ARGUMENT for a negative size, RESOURCE_EXHAUSTED past the message limit.
    static func payload(size: Int32) throws -> Grpc_Testing_Payload {
        guard size >= 0 else { throw RPCError(.invalidArgument, "a payload size must not be negative (got \(size))") }
        guard size <= maxPayloadBytes else {
            throw RPCError(.resourceExhausted, "a payload of \(size) bytes exceeds the \(maxPayloadBytes)-byte limit")
        }
        return .with { $0.body = [UInt8](repeating: 0, count: Int(size)) }
    }

    private func requestedStatus(_ status: Grpc_Testing_EchoStatus?) throws {
        if let status, status.code != 0 { throw RPCError(StatusCode(wireValue: Int(status.code)), status.message) }
    }

    public func unaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        echoMetadata(context)
        try requestedStatus(request.responseStatus)
        let payload = try Self.payload(size: request.responseSize)
        return Grpc_Testing_SimpleResponse.with {
            $0.payload = payload
            // The gateway's authenticated principal when there is one (never a client's own header).
            $0.username = context.metadata["x-croupier-principal"] ?? context.metadata["x-user"] ?? ""
            $0.oauthScope = context.metadata["x-croupier-permissions"] ?? ""
        }
    }

    public func cacheableUnaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        try await unaryCall(request: request, context: context)
    }

    public func streamingOutputCall(
        request: Grpc_Testing_StreamingOutputCallRequest, response: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        for p in request.responseParameters {
            if p.intervalUs > 0 { try await Task.sleep(for: .microseconds(Int(p.intervalUs))) }
            let payload = try Self.payload(size: p.size)
            try await response.write(.with { $0.payload = payload })
        }
    }

    public func streamingInputCall(
        request: RPCAsyncSequence<Grpc_Testing_StreamingInputCallRequest>, context: ServerContext
    ) async throws -> Grpc_Testing_StreamingInputCallResponse {
        var total = 0
        for try await r in request {
            total += r.payload?.body.count ?? 0
            guard total <= Int(Int32.max) else { throw RPCError(.resourceExhausted, "the aggregated payload size exceeds 2^31-1 bytes") }
        }
        return .with { $0.aggregatedPayloadSize = Int32(total) }
    }

    public func fullDuplexCall(
        request: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>,
        response: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
    ) async throws {
        echoMetadata(context)
        for try await r in request {
            try requestedStatus(r.responseStatus)
            for p in r.responseParameters {
                let payload = try Self.payload(size: p.size)
                try await response.write(.with { $0.payload = payload })
            }
        }
    }

    public func halfDuplexCall(
        request: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>,
        response: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
    ) async throws {
        var all: [Grpc_Testing_StreamingOutputCallRequest] = []
        for try await r in request { all.append(r) }
        for r in all {
            for p in r.responseParameters {
                let payload = try Self.payload(size: p.size)
                try await response.write(.with { $0.payload = payload })
            }
        }
    }

    public func unimplementedCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        throw RPCError(.unimplemented, "UnimplementedCall is never implemented")
    }
}
