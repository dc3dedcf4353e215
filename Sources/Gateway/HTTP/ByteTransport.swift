import Glibc

/// Result of moving bytes through a transport.
enum TransportResult {
    case bytes(Int)
    /// Nothing now; try again when the socket is ready (`wantsWrite`: writable).
    case wouldBlock(wantsWrite: Bool)
    /// The peer closed or the transport failed; the text says why (nil: clean close).
    case closed(String?)
}

/// A connection's bytes below HTTP/2: a plain socket (h2c) or TLS over it.
/// Loop thread only.
protocol ByteTransport: AnyObject {
    /// Drives the TLS handshake; true once application bytes can flow.
    func handshake() -> TransportResult
    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult
    func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult
    /// A short description for logs, e.g. "h2c" or "TLSv1.3 h2".
    var protocolName: String { get }
    /// The application protocol the client chose by ALPN ("h2", "http/1.1"), if any.
    var negotiatedProtocol: String? { get }
    /// Input already read from the socket but not yet returned by `read` (TLS records): epoll will not report it.
    var hasBufferedInput: Bool { get }
    func close()
}

/// h2c: bytes straight on the socket.
final class PlainTransport: ByteTransport {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }

    func handshake() -> TransportResult { .bytes(0) }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .closed(nil) }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return .wouldBlock(wantsWrite: false) }
            return .closed(String(cString: strerror(errno)))
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult {
        while true {
            let n = Glibc.send(fd, bytes.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .bytes(n) }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return .wouldBlock(wantsWrite: true) }
            return .closed(String(cString: strerror(errno)))
        }
    }

    var protocolName: String { "plain" }
    var negotiatedProtocol: String? { nil }
    var hasBufferedInput: Bool { false }
    func close() {}
}
