import Foundation
import Gateway

/// `croupier token` and `croupier cert`: the small tools a developer needs
/// to call the gateway.
enum Tools {
    /// Prints an HS256 token signed with the gateway's configured secret.
    static func token(arguments: [String]) throws -> Int32 {
        guard let token = try mintToken(arguments: arguments) else { throw LaunchError("--sub ID is required") }
        print(token)
        return 0
    }

    /// A token for `--sub` with `--perms`, `--roles` and `--ttl`, signed with the
    /// configured secret; nil without `--sub`.
    static func mintToken(arguments: [String]) throws -> String? {
        guard let subject = option("--sub", in: arguments), !subject.isEmpty else { return nil }
        let config = try Configuration.load(arguments: arguments)
        let list = { (name: String) in (option(name, in: arguments) ?? "").split(separator: ",").map(String.init) }
        guard let ttl = Int64(option("--ttl", in: arguments) ?? "3600"), ttl > 0 else { throw LaunchError("--ttl must be a positive number of seconds") }
        let now = Int64(Date().timeIntervalSince1970)
        let claims = JWT.Claims(subject: subject, permissions: list("--perms"), roles: list("--roles"), expires: now + ttl)
        return JWT.sign(claims, secret: config.gateway.jwtSecret)
    }

    /// Writes a self-signed development certificate and key.
    static func cert(arguments: [String]) throws -> Int32 {
        let config = try Configuration.load(arguments: arguments)
        let dir = option("--dir", in: arguments) ?? config.dataDirectory
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let certPath = (dir as NSString).appendingPathComponent("gateway-cert.pem")
        let keyPath = (dir as NSString).appendingPathComponent("gateway-key.pem")
        try DevelopmentCertificate.write(certificate: certPath, key: keyPath)
        print("""
            wrote \(certPath) and \(keyPath) (self-signed, localhost and 127.0.0.1, 365 days)
            to serve TLS on \(config.gateway.tlsListen), add to your config file:
              "gateway": {"tlsCert": "\(certPath)", "tlsKey": "\(keyPath)"}
            """)
        return 0
    }
}
