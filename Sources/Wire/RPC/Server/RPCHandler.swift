/// One call as a server transport hands it to a handler: encoded messages in,
/// encoded messages out. The handler returning is status OK; throwing an
/// `RPCError` ends the call with that status.
public struct RawServerCall: Sendable {
    public let context: ServerContext
    /// The next request message, nil once the client has half-closed.
    public let nextRequest: @Sendable () async throws -> [UInt8]?
    public let sendResponse: @Sendable ([UInt8]) async throws -> Void

    public init(
        context: ServerContext,
        nextRequest: @escaping @Sendable () async throws -> [UInt8]?,
        sendResponse: @escaping @Sendable ([UInt8]) async throws -> Void
    ) {
        self.context = context
        self.nextRequest = nextRequest
        self.sendResponse = sendResponse
    }
}

/// A method a server can dispatch to.
public struct RPCHandler: Sendable {
    public let method: MethodDescriptor
    public let handle: @Sendable (RawServerCall) async throws -> Void
    /// For unary methods: the same handler as one encoded request in, one
    /// encoded response out, which transports serve without message streams.
    public let unary: (@Sendable ([UInt8], ServerContext) async throws -> [UInt8])?

    public init(method: MethodDescriptor, handle: @escaping @Sendable (RawServerCall) async throws -> Void) {
        self.method = method
        self.handle = handle
        unary = nil
    }

    /// A unary handler on encoded messages.
    public init(unary method: MethodDescriptor, _ body: @escaping @Sendable ([UInt8], ServerContext) async throws -> [UInt8]) {
        self.method = method
        unary = body
        handle = { call in
            let request = try await RPCHandler.singleRequest(call)
            try await call.sendResponse(try await body(request, call.context))
        }
    }
}

/// A service implementation: the handlers for its methods.
/// Generated `ServiceProtocol`s conform through an extension.
public protocol RPCService: Sendable {
    var rpcHandlers: [RPCHandler] { get }
}

// The four call kinds, typed. Generated code builds handlers with these.
extension RPCHandler {
    /// Exactly one request message, exactly one response. Inlinable so the
    /// decode and encode are specialized for the service's message types.
    @inlinable
    public static func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) -> RPCHandler {
        RPCHandler(unary: method) { bytes, context in
            try await body(try RPCCodec.decode(Request.self, bytes), context).serializedBytes()
        }
    }

    public static func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Request, RPCWriter<Response>, ServerContext) async throws -> Void
    ) -> RPCHandler {
        RPCHandler(method: method) { call in
            let request = try RPCCodec.decode(Request.self, try await singleRequest(call))
            try await body(request, RPCWriter(sendBytes: call.sendResponse), call.context)
        }
    }

    public static func clientStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (RPCAsyncSequence<Request>, ServerContext) async throws -> Response
    ) -> RPCHandler {
        RPCHandler(method: method) { call in
            let response = try await body(RPCAsyncSequence(nextBytes: call.nextRequest), call.context)
            try await call.sendResponse(response.serializedBytes())
        }
    }

    public static func bidirectionalStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (RPCAsyncSequence<Request>, RPCWriter<Response>, ServerContext) async throws -> Void
    ) -> RPCHandler {
        RPCHandler(method: method) { call in
            try await body(RPCAsyncSequence(nextBytes: call.nextRequest), RPCWriter(sendBytes: call.sendResponse), call.context)
        }
    }

    /// Unary and server-streaming calls carry exactly one request.
    fileprivate static func singleRequest(_ call: RawServerCall) async throws -> [UInt8] {
        guard let bytes = try await call.nextRequest() else {
            throw RPCError(.invalidArgument, "\(call.context.method) expects one request message, got none")
        }
        guard try await call.nextRequest() == nil else {
            throw RPCError(.invalidArgument, "\(call.context.method) expects one request message, got more")
        }
        return bytes
    }
}
