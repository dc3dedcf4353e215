import Foundation
import Synchronization

/// A PostgreSQL cluster of this process's own (tests, benchmarks): `initdb` into a temp
/// directory as the unprivileged `postgres` user (when running as root),
/// started on a free port on 127.0.0.1, stopped when the process exits.
///
/// The server keeps PostgreSQL's stock settings for dead clients: what
/// bounds a vanished replica's hold on its locks is what Croupier's own
/// connections ask of the server per session (`PGConnection`), so the tests
/// see what a user's server would do.
public final class PostgresCluster: Sendable {
    public let host: String
    public let port: UInt16
    public let directory: String
    let bin: String

    private static let instance = Mutex<PostgresCluster?>(nil)

    /// The process's cluster, started on first use.
    public static func shared() throws -> PostgresCluster {
        try instance.withLock { current in
            if let current { return current }
            let cluster = try PostgresCluster()
            current = cluster
            atexit { PostgresCluster.stopShared() }
            return cluster
        }
    }

    static func stopShared() { instance.withLock { $0?.stop() } }

    /// - Parameters:
    ///   - host: the address it listens on (and its URLs name).
    ///   - namespace: a network namespace to run the server in (`ip netns exec`).
    ///   - clients: a CIDR whose hosts may connect (besides loopback), without a password.
    public init(host: String = "127.0.0.1", namespace: String? = nil, clients: String? = nil) throws {
        bin = try Self.binDirectory()
        self.host = host
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-pg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        directory = dir
        if getuid() == 0 { try Self.run("/bin/chown", ["-R", "postgres:postgres", dir]) }
        try Self.run(bin + "/initdb", ["-D", dir + "/data", "-A", "trust", "-U", "croupier", "-E", "UTF8", "--no-sync"], asPostgres: true)
        if let clients {
            let hba = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/data/pg_hba.conf"))
            hba.seekToEndOfFile()
            hba.write(Data("host all all \(clients) trust\n".utf8))
            try hba.close()
        }
        port = namespace == nil ? try Self.freePort() : 5432
        let options = "-p \(port) -k \(dir) -c listen_addresses=\(host) -c max_connections=300 -c fsync=on"
        // The server outlives pg_ctl and inherits its descriptors, so pg_ctl is spawned directly
        // (Foundation's Process would wait for a descriptor the server keeps open).
        try Self.spawn(bin + "/pg_ctl", ["-D", dir + "/data", "-o", options, "-l", dir + "/server.log", "-w", "-t", "60", "start"],
                       namespace: namespace)
    }

    public var baseURL: String { "postgresql://croupier@\(host):\(port)" }

    /// Creates an empty database and returns its URL.
    public func createDatabase(_ name: String = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")) throws -> String {
        try Self.run(bin + "/createdb", ["-h", host, "-p", String(port), "-U", "croupier", name])
        return baseURL + "/" + name
    }

    /// The path of one of the server's client tools (`psql`, `pg_dump`, ...).
    public func tool(_ name: String) -> String { bin + "/" + name }

    /// Runs SQL through `psql` against a database of this cluster (its URL) and returns what it printed.
    public func psql(_ databaseURL: String, _ sql: String) throws -> String {
        try Self.run(tool("psql"), [databaseURL, "-X", "-c", sql])
    }

    public func stop() {
        _ = try? Self.run(bin + "/pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"], asPostgres: true)
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func binDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard let newest = versions.compactMap(Int.init).max(), FileManager.default.fileExists(atPath: "\(root)/\(newest)/bin/initdb") else {
            throw ClusterError("PostgreSQL server binaries not found under \(root): run scripts/setup (Debian package postgresql)")
        }
        return "\(root)/\(newest)/bin"
    }

    /// A port on 127.0.0.1 that nothing listens on (bound, then closed).
    public static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ClusterError("no free port for PostgreSQL") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// posix_spawn and waitpid, output to /dev/null, as the `postgres` user when root.
    static func spawn(_ tool: String, _ arguments: [String], namespace: String? = nil) throws {
        let argv = (namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] } ?? [])
            + (getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", tool] : [tool]) + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
        guard rc == 0 else { throw ClusterError("cannot start \(tool): errno \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw ClusterError("\(argv.joined(separator: " ")) exited with status \(status)") }
    }

    /// Runs a tool to completion; as the `postgres` user when this process is root (initdb refuses root).
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], asPostgres: Bool = false, capture: Bool = true) throws -> String {
        let p = Process()
        if asPostgres && getuid() == 0 {
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            p.arguments = ["-u", "postgres", "--", tool] + arguments
        } else {
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = arguments
        }
        let out = Pipe()
        p.standardOutput = capture ? out : FileHandle.nullDevice
        p.standardError = capture ? out : FileHandle.nullDevice
        try p.run()
        let data = capture ? out.fileHandleForReading.readDataToEndOfFile() : Data()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else { throw ClusterError("\(tool) \(arguments.joined(separator: " ")) failed: \(text)") }
        return text
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
