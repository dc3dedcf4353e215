import Synchronization

/// Metadata a handler sends back besides its messages: headers (sent before
/// the first response message, or with the status when there is none) and
/// trailers (sent with the status). Set them any time before the moment they
/// leave; later changes are ignored.
public final class ResponseMetadata: Sendable {
    private let state = Mutex<(headers: Metadata, trailers: Metadata, headersSent: Bool)>((Metadata(), Metadata(), false))

    public init() {}

    public var headers: Metadata { state.withLock { $0.headers } }
    public var trailers: Metadata { state.withLock { $0.trailers } }

    public func setHeaders(_ headers: Metadata) { state.withLock { $0.headers = headers } }
    public func setTrailers(_ trailers: Metadata) { state.withLock { $0.trailers = trailers } }

    /// The headers to send now: once, and only if any were set.
    func takeHeadersToSend() -> Metadata? {
        state.withLock { s in
            guard !s.headersSent else { return nil }
            s.headersSent = true
            return s.headers.isEmpty ? nil : s.headers
        }
    }
}
