import Wire

/// Answers to a JSON call in Connect's unary shape: success is HTTP 200 with
/// the response message as JSON; an error is the HTTP status its gRPC code
/// maps to, with `{"code": "...", "message": "..."}`. Response metadata,
/// trailers and an error's metadata (a rate limit's `retry-after-ms`) go in
/// headers, as gRPC would send them.
enum JSONResponse {
    /// Connect's HTTP status for each gRPC code.
    static func httpStatus(_ code: StatusCode) -> Int {
        switch code {
        case .ok: return 200
        case .cancelled: return 499
        case .invalidArgument, .failedPrecondition, .outOfRange: return 400
        case .deadlineExceeded: return 504
        case .notFound: return 404
        case .alreadyExists, .aborted: return 409
        case .permissionDenied: return 403
        case .resourceExhausted: return 429
        case .unimplemented: return 501
        case .unavailable: return 503
        case .unauthenticated: return 401
        case .unknown, .internal, .dataLoss: return 500
        }
    }

    /// Connect's name for a code: lower snake case, "canceled" spelled its way.
    static func codeName(_ code: StatusCode) -> String {
        code == .cancelled ? "canceled" : code.name.lowercased()
    }

    static func errorBody(_ error: RPCError) -> [UInt8] {
        JSONValue.object([("code", .string(codeName(error.code))), ("message", .string(error.message))]).serializedBytes
    }

    /// Ends `stream` with `error` as a JSON answer.
    static func fail(_ stream: CallStream, _ error: RPCError, headers: [(String, String)]) {
        stream.respondHTTP(
            status: httpStatus(error.code), contentType: "application/json", body: errorBody(error),
            headers: headers + GRPCResponseHeaders.fields(error.metadata))
    }
}
