import Synchronization

/// What a handler knows about the call it serves.
///
/// Cancellation is Swift task cancellation: when the caller cancels, the
/// deadline passes or the connection drops, the handler's task is cancelled.
///
/// A class, so passing it around costs one reference count, and its
/// `response` is only made when a handler uses it. Not final only so that
/// the Wire server's call object can be its own context (one object per
/// call, not two); no class outside this module can derive from it.
public class ServerContext: @unchecked Sendable {
    // @unchecked: not final (see above); every stored property is a `let` or behind a lock.
    public let method: MethodDescriptor
    /// Metadata the caller sent with the call start.
    public let metadata: Metadata
    /// When the caller stops waiting; nil for no deadline.
    public let deadline: ContinuousClock.Instant?
    /// A description of the remote peer, e.g. `127.0.0.1:53122`.
    public let peer: String
    /// Made on first use. A Mutex, not an `AtomicLazyReference`: that type's
    /// `load` is not specialized across modules, and looking up its generic
    /// metadata on every call cost more than an uncontended lock.
    private let responseStorage: Mutex<ResponseMetadata?>

    public init(
        method: MethodDescriptor, metadata: Metadata, deadline: ContinuousClock.Instant?, peer: String,
        response: ResponseMetadata? = nil
    ) {
        self.method = method
        self.metadata = metadata
        self.deadline = deadline
        self.peer = peer
        responseStorage = Mutex(response)
    }

    /// Headers and trailers to send back to the caller.
    public var response: ResponseMetadata {
        responseStorage.withLock { stored in
            if let stored { return stored }
            let made = ResponseMetadata()
            stored = made
            return made
        }
    }

    /// The response metadata if a handler (or the transport) asked for it.
    var responseIfUsed: ResponseMetadata? { responseStorage.withLock { $0 } }
}
