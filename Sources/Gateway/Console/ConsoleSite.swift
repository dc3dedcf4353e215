/// The operator console at `/console/`: static HTML, CSS and JavaScript
/// embedded in the binary (`ConsoleAssets`, generated from `Console/site`
/// by scripts/embed-console). The pages call the services through this
/// gateway with gRPC-Web (`+json` messages) and the user's token; they are
/// served with a policy that lets them run only their own scripts and
/// connect only to this origin.
struct ConsoleSite: Sendable {
    struct Answer {
        let status: Int
        let contentType: String
        let body: [UInt8]
        let headers: [(String, String)]
    }

    private let files: [String: (contentType: String, body: [UInt8])]

    init(files: [String: String] = ConsoleAssets.files) {
        var byName: [String: (String, [UInt8])] = [:]
        for (name, text) in files { byName[name] = (Self.contentType(of: name), Array(text.utf8)) }
        self.files = byName
    }

    /// Whether `path` is the console's.
    static func serves(_ path: String) -> Bool { path == "/console" || path.hasPrefix("/console/") || path.hasPrefix("/console?") }

    static let headers = [
        ("content-security-policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
        ("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"), ("cache-control", "no-cache"),
    ]

    /// The answer to a GET of `path` (its query ignored).
    func answer(path: String) -> Answer {
        let bare = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? path
        if bare == "/console" { return Answer(status: 308, contentType: "text/plain", body: [], headers: [("location", "/console/")]) }
        var name = String(bare.dropFirst("/console/".count))
        if name.isEmpty { name = "index.html" }
        guard let file = files[name] else {
            return Answer(status: 404, contentType: "text/plain", body: Array("no such console file: \(name)\n".utf8), headers: Self.headers)
        }
        return Answer(status: 200, contentType: file.contentType, body: file.body, headers: Self.headers)
    }

    static func contentType(of name: String) -> String {
        if name.hasSuffix(".html") { return "text/html; charset=utf-8" }
        if name.hasSuffix(".css") { return "text/css; charset=utf-8" }
        if name.hasSuffix(".js") { return "text/javascript; charset=utf-8" }
        if name.hasSuffix(".svg") { return "image/svg+xml" }
        return "application/octet-stream"
    }
}
