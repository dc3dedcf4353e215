/// Calls a Wire server through one `WireChannel` per event loop: a call made
/// from a task running on a loop (e.g. a gateway stream's forwarding task)
/// uses that loop's connection, so its frames are written, and its responses
/// read and delivered, on the same thread — no hop per call. Calls from
/// elsewhere are spread over the loops.
public final class LoopLocalChannel: ClosableChannel {
    private let channels: [(loop: EventLoop, channel: WireChannel)]
    private let group: EventLoopGroup

    public init(host: String, port: UInt16, secret: [UInt8], peerName: String, limits: WireLimits = WireLimits(), group: EventLoopGroup = .shared) {
        self.group = group
        channels = group.loops.map { loop in
            (loop, WireChannel(host: host, port: port, secret: secret, peerName: peerName, limits: limits, group: group, loop: loop))
        }
    }

    private var current: WireChannel {
        if let mine = channels.first(where: { $0.loop.inLoop }) { return mine.channel }
        let loop = group.nextLoop()
        return channels.first { $0.loop === loop }!.channel
    }

    public func withCall<Result: Sendable>(
        _ method: MethodDescriptor, options: CallOptions,
        _ body: @Sendable (any RawClientCall) async throws -> Result
    ) async throws -> Result {
        try await current.withCall(method, options: options, body)
    }

    public func unaryBytes(_ method: MethodDescriptor, _ request: [UInt8], options: CallOptions) async throws -> UnaryResponse {
        try await current.unaryBytes(method, request, options: options)
    }

    /// Starts the call on the current loop's channel: from a loop thread,
    /// `completion` runs on that same thread.
    @discardableResult
    public func startUnary(
        _ method: MethodDescriptor, _ request: [UInt8], options: CallOptions,
        completion: @escaping @Sendable (Result<UnaryResponse, RPCError>) -> Void
    ) -> UnaryCallHandle {
        current.startUnary(method, request, options: options, completion: completion)
    }

    public func close() { for c in channels { c.channel.close() } }

    /// `WireChannel.abortConnections` on every loop's channel.
    public func abortConnections() { for c in channels { c.channel.abortConnections() } }
}
