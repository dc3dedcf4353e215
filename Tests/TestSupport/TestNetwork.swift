import Foundation

/// Hosts for tests of what crosses a network: network namespaces
/// `<tag>-<host>`, each with one veth link to a bridge `<tag>br` on
/// 10.<n>.0.0/24 (the bridge itself is 10.<n>.0.254, so this process, in
/// the root namespace, reaches every host). Needs root and iproute2.
public final class TestNetwork {
    public let tag: String
    public let subnet: String
    public let hosts: [String]

    /// Whether this process can make namespaces (root, iproute2 installed).
    public static var isAvailable: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    }

    public init(hosts: [String]) throws {
        self.hosts = hosts
        tag = "crp" + String(UInt32.random(in: 0..<0xFFFF), radix: 16)
        subnet = "10.\(Int.random(in: 100..<200))"
        try ip("link", "add", bridge, "type", "bridge")
        try ip("addr", "add", "\(subnet).0.254/24", "dev", bridge)
        try ip("link", "set", bridge, "up")
        for (i, host) in hosts.enumerated() {
            try ip("netns", "add", namespace(host))
            try ip("link", "add", outside(host), "type", "veth", "peer", "name", "eth0", "netns", namespace(host))
            try ip("link", "set", outside(host), "master", bridge)
            try ip("link", "set", outside(host), "up")
            try ip("-n", namespace(host), "addr", "add", "\(subnet).0.\(i + 1)/24", "dev", "eth0")
            try ip("-n", namespace(host), "link", "set", "eth0", "up")
            try ip("-n", namespace(host), "link", "set", "lo", "up")
        }
    }

    public var bridge: String { tag + "br" }
    public func namespace(_ host: String) -> String { "\(tag)-\(host)" }
    func outside(_ host: String) -> String { "\(tag)\(host)" }
    public func address(_ host: String) -> String { "\(subnet).0.\(hosts.firstIndex(of: host)! + 1)" }
    /// The CIDR of every host (and this process).
    public var cidr: String { "\(subnet).0.0/24" }

    /// Cuts (or restores) a host's only link: its packets go nowhere, no connection is reset.
    public func link(_ host: String, up: Bool) throws { try ip("link", "set", outside(host), up ? "up" : "down") }

    /// The command line that runs `argv` on `host` (inside its namespace).
    public func on(_ host: String, _ argv: [String]) -> [String] { ["/usr/sbin/ip", "netns", "exec", namespace(host)] + argv }

    public func tearDown() {
        for host in hosts { _ = try? ip("netns", "del", namespace(host)) }
        _ = try? ip("link", "del", bridge)
    }

    func ip(_ arguments: String...) throws {
        let (status, out) = try runToEnd("/usr/sbin/ip", arguments)
        guard status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(out)") }
    }
}
