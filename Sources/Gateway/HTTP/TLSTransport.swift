import COpenSSL
import Foundation

/// The server's TLS configuration: certificate, key, and ALPN (`h2`
/// preferred, `http/1.1` for gRPC-Web and JSON clients).
final class TLSContext: @unchecked Sendable {
    // @unchecked: an SSL_CTX is safe to share once configured.
    let ctx: OpaquePointer

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init(certificateFile: String, keyFile: String) throws {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw Failure(description: "SSL_CTX_new failed") }
        self.ctx = ctx
        // (SSL_CTX_set_min_proto_version and SSL_CTX_set_mode are C macros over SSL_CTX_ctrl.)
        SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), nil)
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateFile) == 1 else {
            throw Failure(description: "cannot load TLS certificate \(certificateFile): \(TLSContext.lastError())")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, keyFile, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
            throw Failure(description: "cannot load TLS key \(keyFile): \(TLSContext.lastError())")
        }
        // ALPN: h2 if the client offers it (gRPC needs it), else http/1.1;
        // a client offering neither is refused. One offering no ALPN at all is
        // told apart by its first bytes, as on the plain port.
        SSL_CTX_set_alpn_select_cb(ctx, { _, out, outlen, input, inlen, _ in
            var offered: [(at: Int, name: [UInt8])] = []
            var i = 0
            while i < Int(inlen) {
                let len = Int(input![i])
                guard i + 1 + len <= Int(inlen) else { break }
                offered.append((i + 1, Array(UnsafeBufferPointer(start: input! + i + 1, count: len))))
                i += 1 + len
            }
            for wanted in [Array("h2".utf8), Array("http/1.1".utf8)] {
                if let pick = offered.first(where: { $0.name == wanted }) {
                    out!.pointee = input! + pick.at
                    outlen!.pointee = UInt8(wanted.count)
                    return SSL_TLSEXT_ERR_OK
                }
            }
            return SSL_TLSEXT_ERR_ALERT_FATAL
        }, nil)
    }

    deinit { SSL_CTX_free(ctx) }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// TLS over a non-blocking socket, server side.
final class TLSTransport: ByteTransport {
    private let ssl: OpaquePointer
    private var established = false
    private(set) var negotiatedProtocol: String?

    init?(fd: Int32, context: TLSContext) {
        guard let ssl = SSL_new(context.ctx) else { return nil }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        SSL_set_accept_state(ssl)
    }

    deinit { SSL_free(ssl) }

    func handshake() -> TransportResult {
        if established { return .bytes(0) }
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            established = true
            var proto: UnsafePointer<UInt8>?
            var len: UInt32 = 0
            SSL_get0_alpn_selected(ssl, &proto, &len)
            if let proto, len > 0 { negotiatedProtocol = String(decoding: UnsafeBufferPointer(start: proto, count: Int(len)), as: UTF8.self) }
            return .bytes(0)
        }
        return outcome(r)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        ERR_clear_error()
        let n = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
        return n > 0 ? .bytes(Int(n)) : outcome(n)
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult {
        ERR_clear_error()
        let n = SSL_write(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
        return n > 0 ? .bytes(Int(n)) : outcome(n)
    }

    private func outcome(_ r: Int32) -> TransportResult {
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ: return .wouldBlock(wantsWrite: false)
        case SSL_ERROR_WANT_WRITE: return .wouldBlock(wantsWrite: true)
        case SSL_ERROR_ZERO_RETURN: return .closed(nil)
        case SSL_ERROR_SYSCALL: return .closed(errno == 0 ? nil : String(cString: strerror(errno)))
        default: return .closed("TLS: \(TLSContext.lastError())")
        }
    }

    var protocolName: String {
        established ? "\(String(cString: SSL_get_version(ssl))) \(negotiatedProtocol ?? "no ALPN")" : "TLS (handshaking)"
    }

    var hasBufferedInput: Bool { SSL_pending(ssl) > 0 }
    func close() { _ = SSL_shutdown(ssl) }
}
