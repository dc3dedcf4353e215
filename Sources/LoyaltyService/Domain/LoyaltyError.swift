/// Why a loyalty operation refused or failed, in domain terms; the API maps
/// each case to its canonical status code.
public enum LoyaltyError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidArgument(String)
    case notFound(String)
    case alreadyExists(String)
    case failedPrecondition(String)
    case permissionDenied(String)
    case unauthenticated(String)
    /// Over a rate limit; the next call is allowed after `retryAfterMillis`.
    case rateLimited(String, retryAfterMillis: Int64)

    public var description: String {
        switch self {
        case .invalidArgument(let m), .notFound(let m), .alreadyExists(let m), .failedPrecondition(let m),
            .permissionDenied(let m), .unauthenticated(let m):
            return m
        case .rateLimited(let m, let wait):
            return "\(m); retry in \(wait) ms"
        }
    }

    /// A short machine-readable name for log lines.
    public var code: String {
        switch self {
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .notFound: return "NOT_FOUND"
        case .alreadyExists: return "ALREADY_EXISTS"
        case .failedPrecondition: return "FAILED_PRECONDITION"
        case .permissionDenied: return "PERMISSION_DENIED"
        case .unauthenticated: return "UNAUTHENTICATED"
        case .rateLimited: return "RESOURCE_EXHAUSTED"
        }
    }
}
