/// What a handler knows about the call it serves.
///
/// Cancellation is Swift task cancellation: when the caller cancels, the
/// deadline passes or the connection drops, the handler's task is cancelled.
public struct ServerContext: Sendable {
    public let method: MethodDescriptor
    /// Metadata the caller sent with the call start.
    public let metadata: Metadata
    /// When the caller stops waiting; nil for no deadline.
    public let deadline: ContinuousClock.Instant?
    /// A description of the remote peer, e.g. `127.0.0.1:53122`.
    public let peer: String
    /// Headers and trailers to send back to the caller.
    public let response: ResponseMetadata

    public init(
        method: MethodDescriptor, metadata: Metadata, deadline: ContinuousClock.Instant?, peer: String,
        response: ResponseMetadata = ResponseMetadata()
    ) {
        self.method = method
        self.metadata = metadata
        self.deadline = deadline
        self.peer = peer
        self.response = response
    }
}
