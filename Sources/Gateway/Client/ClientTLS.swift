import COpenSSL
import Foundation

/// A blocking TLS client session for `GRPCHTTP2Client`: ALPN `h2`, and the
/// server's certificate checked against `caFile` (else the system's roots)
/// and its name or address, unless `insecure`.
final class ClientTLS {
    private let ctx: OpaquePointer
    private let ssl: OpaquePointer

    init(fd: Int32, host: String, caFile: String?, insecure: Bool) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw GRPCHTTP2Client.Failure(description: "SSL_CTX_new failed") }
        self.ctx = ctx
        SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        if !insecure {
            let loaded = caFile.map { SSL_CTX_load_verify_locations(ctx, $0, nil) == 1 } ?? (SSL_CTX_set_default_verify_paths(ctx) == 1)
            guard loaded else {
                SSL_CTX_free(ctx)
                throw GRPCHTTP2Client.Failure(description: "cannot load CA certificates \(caFile ?? "(system)"): \(TLSContext.lastError())")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        }
        let alpn: [UInt8] = [2, UInt8(ascii: "h"), UInt8(ascii: "2")]
        SSL_CTX_set_alpn_protos(ctx, alpn, UInt32(alpn.count))
        guard let ssl = SSL_new(ctx) else {
            SSL_CTX_free(ctx)
            throw GRPCHTTP2Client.Failure(description: "SSL_new failed")
        }
        self.ssl = ssl
        if !insecure {
            // The certificate must name what was dialled: an IP address, or a host name (also sent as SNI).
            let param = SSL_get0_param(ssl)
            if X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 {
                SSL_set1_host(ssl, host)
                _ = host.withCString { SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0)) }
            }
        }
        SSL_set_fd(ssl, fd)
        guard SSL_connect(ssl) == 1 else {
            let why = TLSContext.lastError()
            throw GRPCHTTP2Client.Failure(description: "TLS handshake with \(host) failed: \(why)")
        }
        var proto: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &proto, &length)
        guard length == 2, let proto, proto[0] == UInt8(ascii: "h"), proto[1] == UInt8(ascii: "2") else {
            throw GRPCHTTP2Client.Failure(description: "the server at \(host) did not agree to HTTP/2 (ALPN h2)")
        }
    }

    deinit {
        SSL_shutdown(ssl)
        SSL_free(ssl)
        SSL_CTX_free(ctx)
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Int { Int(SSL_write(ssl, bytes.baseAddress, Int32(bytes.count))) }
    func read(_ buffer: UnsafeMutableRawBufferPointer) -> Int { Int(SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))) }
}
