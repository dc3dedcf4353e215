import COpenSSL
import Glibc

/// `croupier cert`: a self-signed P-256 certificate for localhost and
/// 127.0.0.1 with its key, for running the gateway's TLS port in development.
public enum DevelopmentCertificate {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func write(certificate certPath: String, key keyPath: String, days: Int = 365) throws {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else { throw Failure(description: "no EC support in OpenSSL") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_CTX_set_group_name(ctx, "P-256") == 1, EVP_PKEY_generate(ctx, &key) == 1,
            let key
        else { throw Failure(description: "key generation failed: \(TLSContext.lastError())") }
        defer { EVP_PKEY_free(key) }

        guard let cert = X509_new() else { throw Failure(description: "X509_new failed") }
        defer { X509_free(cert) }
        X509_set_version(cert, 2)
        var serial = [UInt8](repeating: 0, count: 8)
        RAND_bytes(&serial, 8)
        ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial.reduce(0) { $0 << 8 | UInt64($1) } >> 1)
        X509_gmtime_adj(X509_getm_notBefore(cert), -60)
        X509_gmtime_adj(X509_getm_notAfter(cert), days * 86_400)
        X509_set_pubkey(cert, key)
        let name = X509_get_subject_name(cert)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, "localhost", -1, -1, 0)
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, "Croupier development", -1, -1, 0)
        X509_set_issuer_name(cert, name)
        for (nid, value) in [
            (NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"), (NID_basic_constraints, "critical,CA:TRUE"),
            (NID_key_usage, "critical,digitalSignature,keyCertSign"), (NID_ext_key_usage, "serverAuth"),
        ] {
            guard let ext = X509V3_EXT_conf_nid(nil, nil, nid, value) else {
                throw Failure(description: "extension \(value): \(TLSContext.lastError())")
            }
            X509_add_ext(cert, ext, -1)
            X509_EXTENSION_free(ext)
        }
        guard X509_sign(cert, key, EVP_sha256()) > 0 else { throw Failure(description: "signing failed: \(TLSContext.lastError())") }

        guard let certOut = BIO_new_file(certPath, "w") else { throw Failure(description: "cannot write \(certPath)") }
        defer { BIO_free(certOut) }
        PEM_write_bio_X509(certOut, cert)
        guard let keyOut = BIO_new_file(keyPath, "w") else { throw Failure(description: "cannot write \(keyPath)") }
        defer { BIO_free(keyOut) }
        PEM_write_bio_PrivateKey(keyOut, key, nil, nil, 0, nil, nil)
        _ = chmod(keyPath, 0o600)
    }
}
