/// A call that ended with a non-OK status. Handlers throw it to choose the
/// status a caller sees; clients receive it when a call fails.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    /// Trailing metadata sent with the status.
    public var metadata: Metadata
    /// The call provably reached no handler: the client never sent it (no
    /// connection, a closing one, a deadline already past), or the server
    /// refused it before dispatch (draining, too many calls, an unknown
    /// method). Sending it again, to another server, cannot do anything twice.
    public var notProcessed = false

    public init(_ code: StatusCode, _ message: String, metadata: Metadata = Metadata()) {
        precondition(code != .ok, "an RPCError cannot carry OK")
        self.code = code
        self.message = message
        self.metadata = metadata
    }

    public var description: String { "\(code.name): \(message)" }

    /// This status, marked as one that reached no handler.
    public var markedNotProcessed: RPCError {
        var e = self
        e.notProcessed = true
        return e
    }
}

extension RPCError {
    /// The status an error becomes on the wire: itself if it is one,
    /// CANCELLED for a `CancellationError`, else UNKNOWN (a handler's own error).
    public static func from(_ error: any Error) -> RPCError {
        if let e = error as? RPCError { return e }
        if error is CancellationError { return RPCError(.cancelled, "the call was cancelled") }
        return RPCError(.unknown, "handler failed: \(error)")
    }
}
