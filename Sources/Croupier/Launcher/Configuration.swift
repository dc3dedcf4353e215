import Foundation
import GameTablesService
import LoyaltyService
import StagingService

/// Croupier's settings: built-in defaults (MISSION.md "Fixed defaults"),
/// overridden by an optional JSON file (`--config FILE`), overridden by
/// environment variables. `up` and every `serve` child resolve the same way,
/// so they agree on the data directory and the secrets.
struct Configuration {
    var dataDirectory = "./var"
    /// Wire listen ports by component; 0 picks a free port.
    var ports: [String: Int] = ["interop": 7100, "loyalty": 7101, "games": 7102, "rgs": 7103, "staging": 7104]
    /// The host Wire servers listen on (another host's replicas need a reachable address).
    var listenHost = "127.0.0.1"
    /// Database by component: a `postgres://` URL or a SQLite path; absent,
    /// the SQLite file `<component>.sqlite` in the data directory.
    var databases: [String: String] = [:]
    /// Replicas `up` starts of a component (default 1). More than one needs a
    /// PostgreSQL database: a SQLite file belongs to one process.
    var replicas: [String: Int] = [:]
    /// A component's replicas by address ("host:port"), when they run
    /// elsewhere: the gateway and peers call these, and `up` starts none.
    var addresses: [String: [String]] = [:]
    var internalSecret: [UInt8] = []
    var gateway = GatewaySettings()
    var loyalty = LoyaltySettings()
    var games = GamesRole.Settings()
    var staging = StagingRole.Settings()

    /// The gateway's settings (MISSION.md "Fixed defaults").
    struct GatewaySettings {
        var listen = "127.0.0.1:7000"
        /// TLS listens only when a certificate and key are configured.
        var tlsListen = "127.0.0.1:7443"
        var tlsCertificate: String?
        var tlsKey: String?
        var jwtSecret: [UInt8] = []
        /// Method path or service name → permission: each service's own table, then the config file's.
        var permissions: [String: String] = LoyaltyPermission.gatewayDefaults.merging(StagingPermission.byMethod) { $1 }
        /// Idle connection, first request / header, TLS handshake (seconds).
        var timeouts = (idle: 300.0, header: 10.0, handshake: 10.0)
        var corsOrigins: [String] = []
        /// Bytes all clients together, and one connection, may make the gateway hold.
        var bufferLimits = (total: 256 << 20, perConnection: 16 << 20)
        /// Keepalive enforcement (seconds between a client's PINGs with nothing sent in between).
        var minPingIntervalSeconds = 300.0
        /// Accept tokens without `exp` (refused by default).
        var allowTokensWithoutExpiry = false
        /// Per-principal limits the gateway enforces. ManualReward's (10 per 60 s
        /// by default) is enforced by the loyalty service, the only place that
        /// can tell a replay from a new award; a `gateway.rateLimits` entry for
        /// it configures that one limit (see `load`).
        var rateLimits: [(method: String, limit: Int, periodSeconds: Double)] = []
    }

    /// Components `up` starts, each as its own process, in this order (the
    /// gateway last: it routes to the others).
    static let components = ["interop", "loyalty", "games", "rgs", "staging", "gateway"]

    /// Wire services (not the gateway) and the proto packages (or single services) each owns.
    static let backends: [(component: String, packages: [String])] = [
        ("interop", ["grpc.testing"]), ("loyalty", ["croupier.loyalty.v1"]),
        ("games", ["croupier.gametables.v1.GamesCleanup", "croupier.gametables.v1.GameRuntime"]),
        ("rgs", ["croupier.gametables.v1.RgsCleanup"]), ("staging", ["croupier.staging.v1"]),
    ]

    /// Components with a database of their own.
    static let databaseComponents: Set<String> = ["loyalty", "games", "rgs", "staging"]

    /// A component's database: its configured location (a PostgreSQL URL or
    /// a SQLite path), else the SQLite file in the data directory.
    func databasePath(_ component: String) -> String {
        databases[component] ?? (dataDirectory as NSString).appendingPathComponent("\(component).sqlite")
    }

    /// The address this host's own servers are reached at (the wildcard listens on loopback too).
    var reachableHost: String { listenHost == "0.0.0.0" ? "127.0.0.1" : listenHost }

    static func isPostgres(_ location: String) -> Bool {
        location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")
    }

    /// Where a component's replicas listen: its `addresses` if listed, else
    /// its one local port.
    func replicaAddresses(_ component: String) throws -> [(host: String, port: UInt16)] {
        if let listed = addresses[component], !listed.isEmpty {
            return try listed.map { a in
                let (host, port) = try splitAddress(a)
                guard port > 0 else { throw LaunchError("\(component): address '\(a)' needs a port") }
                return (host, port)
            }
        }
        guard let port = ports[component], port > 0 else {
            throw LaunchError("\(component)'s port is unknown (config ports, CROUPIER_\(component.uppercased())_PORT or _ADDRS)")
        }
        return [("127.0.0.1", UInt16(port))]
    }

    /// Refuses what cannot work: several replicas on one SQLite file, replicas of the gateway.
    func validateReplicas() throws {
        for (component, n) in replicas {
            guard Self.components.contains(component) else { throw LaunchError("replicas: unknown component '\(component)'") }
            guard n >= 1, n <= 16 else { throw LaunchError("replicas.\(component) must be from 1 to 16, not \(n)") }
            guard n == 1 || component != "gateway" else { throw LaunchError("replicas.gateway: the gateway runs once per host") }
            if n > 1, Self.databaseComponents.contains(component), !Self.isPostgres(databasePath(component)) {
                throw LaunchError("""
                    replicas.\(component) is \(n), but \(component)'s database is a SQLite file, which one process owns; \
                    set "\(component)": {"database": "postgres://…"} or CROUPIER_\(component.uppercased())_DATABASE_URL
                    """)
            }
        }
    }

    static func load(arguments: [String]) throws -> Configuration {
        var c = Configuration()
        if let path = option("--config", in: arguments) {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw LaunchError("\(path): expected a JSON object")
            }
            if let dir = json["dataDir"] as? String { c.dataDirectory = dir }
            if let ports = json["ports"] as? [String: Int] { c.ports.merge(ports) { $1 } }
            if let host = json["listenHost"] as? String { c.listenHost = host }
            if let v = json["replicas"] {
                guard let r = v as? [String: Int] else { throw LaunchError("\(path): replicas must map components to counts") }
                c.replicas = r
            }
            if let v = json["addresses"] {
                guard let a = v as? [String: [String]] else { throw LaunchError("\(path): addresses must map components to [\"host:port\"]") }
                c.addresses = a
            }
            for name in databaseComponents {
                guard let v = (json[name] as? [String: Any])?["database"] else { continue }
                guard let location = v as? String, !location.isEmpty else { throw LaunchError("\(path): \(name).database must be a URL or path") }
                c.databases[name] = location
            }
            if let g = json["gateway"] as? [String: Any] { try c.gateway.apply(g, file: path) }
            if let l = json["loyalty"] as? [String: Any] { try c.loyalty.apply(l, file: path) }
            if let g = json["games"] as? [String: Any] { try c.games.apply(g, file: path) }
            if let st = json["staging"] as? [String: Any] { try c.staging.apply(st, file: path) }
            c.moveServiceEnforcedLimits()
        }
        let env = ProcessInfo.processInfo.environment
        if let dir = env["CROUPIER_DATA_DIR"], !dir.isEmpty { c.dataDirectory = dir }
        for name in components {
            let prefix = "CROUPIER_\(name.uppercased())"
            if let p = env["\(prefix)_PORT"].flatMap(Int.init) { c.ports[name] = p }
            if let a = env["\(prefix)_ADDRS"], !a.isEmpty { c.addresses[name] = a.split(separator: ",").map(String.init) }
            if let n = env["\(prefix)_REPLICAS"].flatMap(Int.init) { c.replicas[name] = n }
            if databaseComponents.contains(name), let url = env["\(prefix)_DATABASE_URL"], !url.isEmpty { c.databases[name] = url }
        }
        if let host = env["CROUPIER_LISTEN_HOST"], !host.isEmpty { c.listenHost = host }
        // `up --replicas loyalty=3,staging=2` wins over the file and the environment.
        if let flag = option("--replicas", in: arguments) {
            for pair in flag.split(separator: ",") {
                let parts = pair.split(separator: "=")
                guard parts.count == 2, let n = Int(parts[1]) else { throw LaunchError("--replicas takes component=count pairs, e.g. loyalty=3,staging=2") }
                c.replicas[String(parts[0])] = n
            }
        }
        try c.validateReplicas()
        try FileManager.default.createDirectory(atPath: c.dataDirectory, withIntermediateDirectories: true)
        if let addr = env["CROUPIER_GATEWAY_ADDR"], !addr.isEmpty { c.gateway.listen = addr }
        c.internalSecret = try secret(env: "CROUPIER_INTERNAL_SECRET", file: "internal-secret", in: c.dataDirectory)
        c.gateway.jwtSecret = try secret(env: "CROUPIER_JWT_SECRET", file: "jwt-secret", in: c.dataDirectory)
        return c
    }

    /// One rate limit, one meaning: a limit the gateway cannot enforce
    /// truthfully (it cannot tell a replayed reward from a new one) is
    /// handed to the service that can, in the same model (`SlidingWindow`),
    /// instead of being counted twice.
    mutating func moveServiceEnforcedLimits() {
        let manualReward = Croupier_Loyalty_V1_LoyaltyService.Method.manualReward.path
        if let rule = gateway.rateLimits.first(where: { $0.method == manualReward }) {
            loyalty.manualRewardsPerMinute = rule.limit
            loyalty.manualRewardWindowMillis = Int64((rule.periodSeconds * 1000).rounded(.up))
            gateway.rateLimits.removeAll { $0.method == manualReward }
        }
    }

    /// The shortest secret accepted: 16 bytes (a generated one has 64 hex characters).
    static let minimumSecretBytes = 16

    /// A secret from the environment, else generated once into the data
    /// directory. Fails closed: an empty or short secret stops the start,
    /// naming where it came from.
    static func secret(env name: String, file: String, in directory: String) throws -> [UInt8] {
        if let s = ProcessInfo.processInfo.environment[name] {
            guard s.utf8.count >= minimumSecretBytes else {
                throw LaunchError("\(name) is \(s.isEmpty ? "empty" : "shorter than \(minimumSecretBytes) bytes"); refusing to start with a weak secret")
            }
            return Array(s.utf8)
        }
        return try generatedSecret(named: file, in: directory)
    }

    /// A secret generated once into the data directory (mode 0600) and reused
    /// after. It is written whole before it can be seen: a temporary file,
    /// fsync, then a hard link to the final name (which fails if another
    /// process got there first; then both use that one). A file that exists
    /// but is empty or short (a crash of an older writer) is refused, never
    /// used as a key.
    static func generatedSecret(named name: String, in directory: String) throws -> [UInt8] {
        let path = (directory as NSString).appendingPathComponent(name)
        if let existing = try readSecret(path) { return existing }
        guard let urandom = FileHandle(forReadingAtPath: "/dev/urandom") else { throw LaunchError("cannot read /dev/urandom") }
        let secret = Array(urandom.readData(ofLength: 32).map { String(format: "%02x", $0) }.joined().utf8)
        try? urandom.close()
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LaunchError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        defer { unlink(temporary) }
        let written = secret.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == secret.count, synced else { throw LaunchError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        if link(temporary, path) == 0 {
            let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dir >= 0 { fsync(dir); close(dir) }
            return secret
        }
        guard errno == EEXIST, let theirs = try readSecret(path) else {
            throw LaunchError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        return theirs
    }

    /// The secret in `path`, nil if there is no such file; refuses an empty or short one.
    private static func readSecret(_ path: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw LaunchError("cannot read the secret file \(path)") }
        let secret = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        guard secret.count >= minimumSecretBytes else {
            throw LaunchError("the secret file \(path) is \(secret.isEmpty ? "empty" : "shorter than \(minimumSecretBytes) bytes"); refusing to start with a weak secret (delete it to generate a new one)")
        }
        return secret
    }
}

extension Configuration.GatewaySettings {
    /// Applies the "gateway" object of a config file.
    mutating func apply(_ g: [String: Any], file: String) throws {
        if let v = g["listen"] as? String { listen = v }
        if let v = g["tlsListen"] as? String { tlsListen = v }
        if let v = g["tlsCert"] as? String { tlsCertificate = v }
        if let v = g["tlsKey"] as? String { tlsKey = v }
        if let v = g["permissions"] as? [String: String] { permissions.merge(v) { $1 } }
        if let v = try seconds(g["idleTimeoutSeconds"], "gateway.idleTimeoutSeconds", file: file) { timeouts.idle = v }
        if let v = try seconds(g["headerTimeoutSeconds"], "gateway.headerTimeoutSeconds", file: file) { timeouts.header = v }
        if let v = try seconds(g["tlsHandshakeTimeoutSeconds"], "gateway.tlsHandshakeTimeoutSeconds", file: file) { timeouts.handshake = v }
        if let v = try seconds(g["minPingIntervalSeconds"], "gateway.minPingIntervalSeconds", file: file) { minPingIntervalSeconds = v }
        if let v = try bytes(g["maxBufferedBytes"], "gateway.maxBufferedBytes", file: file) { bufferLimits.total = v }
        if let v = try bytes(g["maxConnectionBufferedBytes"], "gateway.maxConnectionBufferedBytes", file: file) { bufferLimits.perConnection = v }
        if let v = g["corsOrigins"] {
            guard let list = v as? [String] else { throw LaunchError("\(file): gateway.corsOrigins must be a list of origins, e.g. [\"https://admin.example.com\"]") }
            corsOrigins = list
        }
        if let v = g["allowTokensWithoutExpiry"] {
            guard let b = v as? Bool else { throw LaunchError("\(file): gateway.allowTokensWithoutExpiry must be true or false") }
            allowTokensWithoutExpiry = b
        }
        if let rules = g["rateLimits"] as? [String: Any] {
            for (method, value) in rules {
                guard let r = value as? [String: Any], let limit = r["limit"] as? Int, limit >= 1,
                      let period = try seconds(r["periodSeconds"], "gateway.rateLimits.\(method).periodSeconds", file: file)
                else { throw LaunchError("\(file): gateway.rateLimits.\(method) needs {\"limit\": N >= 1, \"periodSeconds\": S}") }
                rateLimits.removeAll { $0.method == method }
                rateLimits.append((method, limit, period))
            }
        }
    }
}

/// A byte count: a whole number from 64 KiB (room for a few frames) to 1 TiB; nil when absent.
private func bytes(_ value: Any?, _ key: String, file: String) throws -> Int? {
    guard let value else { return nil }
    guard let n = value as? NSNumber, !["c", "d", "f"].contains(String(cString: n.objCType)),  // not a bool or a fraction
        n.int64Value >= 64 << 10, n.int64Value <= 1 << 40
    else {
        throw LaunchError("\(file): \(key) must be a whole number of bytes from 65536 to 2^40, not \(value)")
    }
    return Int(n.int64Value)
}

/// A duration setting in seconds: a number above 0 (or 0 itself, if
/// `zeroAllowed`) and at most a year; nil when absent.
private func seconds(_ value: Any?, _ key: String, file: String, zeroAllowed: Bool = false) throws -> Double? {
    guard let value else { return nil }
    guard let v = (value as? NSNumber)?.doubleValue, v > 0 || (zeroAllowed && v == 0), v <= 365 * 86_400 else {
        throw LaunchError("\(file): \(key) must be a number of seconds \(zeroAllowed ? "from 0" : "above 0") to a year, not \(value)")
    }
    return v
}

extension LoyaltySettings {
    /// Applies the "loyalty" object of a config file: `tiers` {"SILVER": n, "GOLD": n, "PLATINUM": n},
    /// `manualRewardsPerMinute`, `manualRewardAlertPerHour`.
    mutating func apply(_ l: [String: Any], file: String) throws {
        if let t = l["tiers"] as? [String: Int] {
            do {
                tiers = try TierSchedule(
                    silver: Int64(t["SILVER"] ?? Int(tiers.silver)), gold: Int64(t["GOLD"] ?? Int(tiers.gold)),
                    platinum: Int64(t["PLATINUM"] ?? Int(tiers.platinum)))
            } catch { throw LaunchError("\(file): loyalty.tiers: \(error)") }
        }
        if let v = l["manualRewardsPerMinute"] as? Int { manualRewardsPerMinute = v }
        if let v = l["manualRewardAlertPerHour"] as? Int { manualRewardAlertPerHour = v }
    }
}

extension GamesRole.Settings {
    /// Applies the "games" object of a config file: `batchPauseSeconds` (0.5),
    /// `messageRetentionSeconds` (7 days), `cleanerIntervalSeconds` (1 hour), `runtimeBatchSize` (512).
    mutating func apply(_ g: [String: Any], file: String) throws {
        if let v = try seconds(g["batchPauseSeconds"], "games.batchPauseSeconds", file: file, zeroAllowed: true) {
            batchPause = .milliseconds(Int(v * 1000))
        }
        if let v = try seconds(g["messageRetentionSeconds"], "games.messageRetentionSeconds", file: file) { messageRetention = .seconds(v) }
        if let v = try seconds(g["cleanerIntervalSeconds"], "games.cleanerIntervalSeconds", file: file) { cleanerInterval = .seconds(v) }
        if let v = g["runtimeBatchSize"] as? Int { runtimeBatchSize = max(1, v) }
    }
}

extension StagingRole.Settings {
    /// Applies the "staging" object of a config file: `leaseSeconds` (30), `diffVisibilitySeconds`
    /// (1800), `maxConcurrentMerges` (2), `diffRetryBaseSeconds` (1), `maxImageBytes` (5 MiB),
    /// `progressIntervalMillis` (500).
    mutating func apply(_ s: [String: Any], file: String) throws {
        if let v = try seconds(s["leaseSeconds"], "staging.leaseSeconds", file: file) { leaseMillis = Int64(v * 1000) }
        if let v = try seconds(s["diffVisibilitySeconds"], "staging.diffVisibilitySeconds", file: file) { diffVisibilityMillis = Int64(v * 1000) }
        if let v = s["maxConcurrentMerges"] as? Int { maxConcurrentMerges = max(1, v) }
        if let v = try seconds(s["diffRetryBaseSeconds"], "staging.diffRetryBaseSeconds", file: file) { diffRetryBaseMillis = Int64(v * 1000) }
        if let v = s["maxImageBytes"] {
            // Up to 64 MiB: the gateway and the Wire server take one message that large for UploadImage.
            guard let n = v as? Int, (1...(64 << 20)).contains(n) else {
                throw LaunchError("\(file): staging.maxImageBytes must be a whole number of bytes from 1 to 67108864, not \(v)")
            }
            maxImageBytes = n
        }
        if let v = s["progressIntervalMillis"] as? Int { progressIntervalMillis = max(0, v) }
    }
}

/// "host:port" split, for listen addresses.
func splitAddress(_ text: String) throws -> (host: String, port: UInt16) {
    guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
        throw LaunchError("'\(text)' is not host:port")
    }
    return (String(text[..<colon]), port)
}

struct LaunchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
