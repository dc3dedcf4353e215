import Foundation

/// Croupier's settings: built-in defaults (MISSION.md "Fixed defaults"),
/// overridden by an optional JSON file (`--config FILE`), overridden by
/// environment variables. `up` and every `serve` child resolve the same way,
/// so they agree on the data directory and the secrets.
struct Configuration {
    var dataDirectory = "./var"
    /// Wire listen ports by component; 0 picks a free port.
    var ports: [String: Int] = ["interop": 7100]
    var internalSecret: [UInt8] = []

    /// Components `up` starts, each as its own process.
    static let components = ["interop"]

    static func load(arguments: [String]) throws -> Configuration {
        var c = Configuration()
        if let path = option("--config", in: arguments) {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw LaunchError("\(path): expected a JSON object")
            }
            if let dir = json["dataDir"] as? String { c.dataDirectory = dir }
            if let ports = json["ports"] as? [String: Int] { c.ports.merge(ports) { $1 } }
        }
        let env = ProcessInfo.processInfo.environment
        if let dir = env["CROUPIER_DATA_DIR"], !dir.isEmpty { c.dataDirectory = dir }
        for name in components {
            if let p = env["CROUPIER_\(name.uppercased())_PORT"].flatMap(Int.init) { c.ports[name] = p }
        }
        try FileManager.default.createDirectory(atPath: c.dataDirectory, withIntermediateDirectories: true)
        if let secret = env["CROUPIER_INTERNAL_SECRET"], !secret.isEmpty {
            c.internalSecret = Array(secret.utf8)
        } else {
            c.internalSecret = try generatedSecret(named: "internal-secret", in: c.dataDirectory)
        }
        return c
    }

    /// A secret generated once into the data directory (mode 0600) and reused after.
    static func generatedSecret(named name: String, in directory: String) throws -> [UInt8] {
        let path = (directory as NSString).appendingPathComponent(name)
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            return Array(existing.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        let urandom = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        bytes = [UInt8](urandom.readData(ofLength: 32))
        let secret = bytes.map { String(format: "%02x", $0) }.joined()
        // Create exclusively so two processes starting together agree on one secret.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if fd >= 0 {
            _ = secret.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            return Array(secret.utf8)
        }
        return Array(try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines).utf8)
    }
}

struct LaunchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
