/// Which web origins may call the gateway from a browser (gRPC-Web, JSON),
/// and the CORS headers that say so. No origins configured: no CORS headers
/// at all, so a page of another origin cannot read any answer (the console
/// the gateway serves itself is same-origin and needs none).
struct CORSPolicy: Sendable {
    /// Exact origins (`https://admin.example.com`), or `*` for any.
    let origins: Set<String>

    /// Headers a browser script may read from an answer besides the simple ones.
    static let exposed = "grpc-status, grpc-message, grpc-status-details-bin, x-correlation-id, retry-after-ms"
    /// How long a browser may cache a preflight's answer.
    static let maxAgeSeconds = 600

    func allows(_ origin: String?) -> Bool {
        guard let origin, !origins.isEmpty else { return false }
        return origins.contains("*") || origins.contains(origin)
    }

    /// Added to every answer to an allowed origin.
    func responseHeaders(origin: String?) -> [(String, String)] {
        guard allows(origin), let origin else { return [] }
        return [("access-control-allow-origin", origin), ("access-control-expose-headers", Self.exposed), ("vary", "origin")]
    }

    /// The answer to a preflight (`OPTIONS` with `access-control-request-method`): the
    /// status and headers. Any request header may be sent (gRPC metadata is custom headers).
    func preflight(origin: String?, requestedHeaders: String?) -> (Int, [(String, String)]) {
        guard allows(origin), let origin else { return (403, []) }
        var headers = [
            ("access-control-allow-origin", origin), ("access-control-allow-methods", "POST"),
            ("access-control-max-age", String(Self.maxAgeSeconds)), ("vary", "origin"),
        ]
        if let requestedHeaders, !requestedHeaders.isEmpty { headers.append(("access-control-allow-headers", requestedHeaders)) }
        return (204, headers)
    }
}
