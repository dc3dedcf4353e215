import CNGHTTP2
import Foundation
import Wire

/// A small blocking gRPC client over HTTP/2 (h2c, or h2 over TLS), on nghttp2: what
/// `croupier call` uses to reach the gateway the way any gRPC client does.
/// One call at a time; response messages are handed over as they arrive, so
/// a server stream prints as it goes.
public final class GRPCHTTP2Client {
    /// How a call ended: its gRPC status, and what the server sent besides messages.
    public struct Outcome {
        public var code: StatusCode = .unknown
        public var message = ""
        public var headers: [(String, String)] = []
        public var trailers: [(String, String)] = []

        /// The trailing metadata: the trailers, or for a trailers-only answer its one header block, less the status.
        public var trailingMetadata: [(String, String)] {
            (trailers.isEmpty ? headers : trailers).filter { !["grpc-status", "grpc-message", "content-type"].contains($0.0) }
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private let fd: Int32
    private let tls: ClientTLS?
    private var session: OpaquePointer?
    private let authority: String
    // The call in progress.
    private var body: [UInt8] = []
    private var bodyOffset = 0
    private var outcome = Outcome()
    private var inTrailers = false
    private var httpStatus = ""
    private var closed = false
    private var deframer = GRPCDeframer(maxMessageBytes: 64 << 20)
    private var onMessage: (([UInt8]) throws -> Void)?
    private var callbackError: Error?

    /// `tls`: h2 over TLS, the server checked against `caFile` (else the system's roots) unless `insecure`.
    public init(host: String, port: UInt16, tls: (caFile: String?, insecure: Bool)? = nil) throws {
        let socket = try Posix.connectBlocking(host: host, port: port)
        do {
            self.tls = try tls.map { try ClientTLS(fd: socket, host: host, caFile: $0.caFile, insecure: $0.insecure) }
        } catch {
            close(socket)
            throw error
        }
        fd = socket
        authority = "\(host):\(port)"
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, namelen, value, valuelen, _, user in
            guard let f = frame?.pointee, f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            let client = GRPCHTTP2Client.from(user)
            let n = String(decoding: UnsafeRawBufferPointer(start: name, count: namelen), as: UTF8.self)
            let v = String(decoding: UnsafeRawBufferPointer(start: value, count: valuelen), as: UTF8.self)
            client.header(n, v, trailers: f.headers.cat == NGHTTP2_HCAT_HEADERS)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, _, data, len, user in
            GRPCHTTP2Client.from(user).data(UnsafeRawBufferPointer(start: data, count: len))
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, _, errorCode, user in
            let client = GRPCHTTP2Client.from(user)
            client.closed = true
            if errorCode != 0 && client.callbackError == nil {
                client.callbackError = Failure(description: "the server reset the stream (HTTP/2 error \(errorCode))")
            }
            return 0
        }
        var s: OpaquePointer?
        guard nghttp2_session_client_new(&s, callbacks, Unmanaged.passUnretained(self).toOpaque()) == 0 else {
            close(fd)
            throw Failure(description: "nghttp2 could not make a client session")
        }
        session = s
        nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil, 0)
    }

    deinit {
        nghttp2_session_del(session)
        close(fd)
    }

    private static func from(_ user: UnsafeMutableRawPointer?) -> GRPCHTTP2Client {
        Unmanaged<GRPCHTTP2Client>.fromOpaque(user!).takeUnretainedValue()
    }

    /// Sends `requests` (serialized messages) to `path` and half-closes; calls
    /// `onMessage` with each response message; returns the status.
    public func call(
        path: String, metadata: [(String, String)] = [], timeout: Duration? = nil, requests: [[UInt8]],
        onMessage: @escaping ([UInt8]) throws -> Void
    ) throws -> Outcome {
        body = []
        for r in requests {
            let n = UInt32(r.count)
            body += [0, UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
            body += r
        }
        (bodyOffset, outcome, inTrailers, httpStatus, closed, callbackError) = (0, Outcome(), false, "", false, nil)
        deframer = GRPCDeframer(maxMessageBytes: 64 << 20)
        self.onMessage = onMessage
        var headers = [(":method", "POST"), (":scheme", "http"), (":authority", authority), (":path", path),
                       ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "croupier-call")]
        if let timeout {
            let ms = max(1, Int64(timeout.components.seconds) * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
            headers.append(("grpc-timeout", "\(ms)m"))
        }
        headers += metadata
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil)) { _, _, buf, length, flags, _, user in
            let client = GRPCHTTP2Client.from(user)
            let n = min(length, client.body.count - client.bodyOffset)
            client.body.withUnsafeBytes { src in
                if n > 0 { buf!.update(from: src.baseAddress!.assumingMemoryBound(to: UInt8.self) + client.bodyOffset, count: n) }
            }
            client.bodyOffset += n
            if client.bodyOffset == client.body.count { flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) }
            return n
        }
        var stream: Int32 = 0
        HeaderBlock.with(headers) { nva, count in stream = nghttp2_submit_request(session, nil, nva, count, &provider, nil) }
        guard stream > 0 else { throw Failure(description: "nghttp2 refused the request (\(stream))") }
        try run()
        if let callbackError { throw callbackError }
        if httpStatus != "200" && outcome.trailers.isEmpty && !outcome.headers.contains(where: { $0.0 == "grpc-status" }) {
            throw Failure(description: "HTTP \(httpStatus): not a gRPC answer")
        }
        let fields = outcome.trailers.isEmpty ? outcome.headers : outcome.trailers  // trailers-only: status in the headers
        outcome.code = fields.first { $0.0 == "grpc-status" }.flatMap { Int($0.1) }.flatMap { StatusCode(rawValue: $0) } ?? .unknown
        outcome.message = fields.first { $0.0 == "grpc-message" }.map { Self.percentDecode($0.1) } ?? ""
        return outcome
    }

    /// Writes what nghttp2 has to send and reads until the call's stream closes.
    private func run() throws {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while !closed {
            while true {
                var data: UnsafePointer<UInt8>?
                let n = nghttp2_session_mem_send(session, &data)
                if n < 0 { throw Failure(description: "HTTP/2 error \(n)") }
                if n == 0 { break }
                var sent = 0
                while sent < n {
                    let w = send(UnsafeRawBufferPointer(start: data! + sent, count: n - sent))
                    if w < 0 && errno == EINTR { continue }
                    guard w > 0 else { throw Failure(description: "the connection to \(authority) was lost") }
                    sent += w
                }
            }
            if closed { break }
            let r = buffer.withUnsafeMutableBytes { receive($0) }
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { throw Failure(description: "the gateway at \(authority) closed the connection") }
            let consumed = buffer.withUnsafeBytes { nghttp2_session_mem_recv(session, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), r) }
            if consumed < 0 { throw callbackError ?? Failure(description: "HTTP/2 error: \(String(cString: nghttp2_strerror(Int32(consumed))))") }
        }
    }

    private func send(_ bytes: UnsafeRawBufferPointer) -> Int {
        tls.map { $0.write(bytes) } ?? write(fd, bytes.baseAddress, bytes.count)
    }

    private func receive(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        tls.map { $0.read(buffer) } ?? read(fd, buffer.baseAddress, buffer.count)
    }

    private func header(_ name: String, _ value: String, trailers: Bool) {
        if name == ":status" { httpStatus = value; return }
        if trailers { outcome.trailers.append((name, value)) } else { outcome.headers.append((name, value)) }
    }

    private func data(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        do {
            for m in try deframer.append(bytes) {
                guard !m.compressed else { throw Failure(description: "the server sent a compressed message (identity was asked for)") }
                try onMessage?(m.payload)
            }
        } catch {
            callbackError = error
            return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue
        }
        return 0
    }

    /// grpc-message is percent-encoded (PROTOCOL-HTTP2.md).
    static func percentDecode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var i = text.utf8.startIndex
        let u = text.utf8
        while i < u.endIndex {
            if u[i] == UInt8(ascii: "%"), let a = u.index(i, offsetBy: 2, limitedBy: u.endIndex), a < u.endIndex,
               let v = UInt8(String(decoding: u[u.index(after: i)...a], as: UTF8.self), radix: 16) {
                bytes.append(v)
                i = u.index(after: a)
            } else {
                bytes.append(u[i])
                i = u.index(after: i)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
