import Foundation
import Glibc
import Synchronization

/// Serves `RPCService`s over Wire on a TCP port.
///
/// Handlers run as tasks on the event loop that reads their connection, so
/// a call is read, handled and answered on one thread. A handler must
/// therefore not block the thread: await I/O (Storage does its SQLite work on
/// its own threads), and move long CPU-bound work off the loop
/// (`Task.detached` or a dedicated queue).
public final class WireServer: Sendable {
    /// What every connection of this server needs, immutable after start.
    final class Shared: Sendable {
        let name: String
        let methods: MethodTable
        let secret: [UInt8]
        let limits: WireLimits
        let connections = Mutex<[ObjectIdentifier: ServerConnection]>([:])
        let logger: @Sendable (String) -> Void

        init(name: String, handlers: [String: RPCHandler], secret: [UInt8], limits: WireLimits, logger: @escaping @Sendable (String) -> Void) {
            self.name = name
            methods = MethodTable(handlers)
            self.secret = secret
            self.limits = limits
            self.logger = logger
        }

        func log(_ line: String) { logger(line) }

        func connectionClosed(_ c: ServerConnection) {
            connections.withLock { $0[ObjectIdentifier(c)] = nil }
        }
    }

    private let shared: Shared
    private let group: EventLoopGroup
    private let listener: Mutex<Listener?> = Mutex(nil)

    /// - Parameters:
    ///   - name: how the server names itself in errors and logs (e.g. "loyalty").
    ///   - secret: the internal secret peers must prove.
    public init(
        name: String, services: [any RPCService], secret: [UInt8], limits: WireLimits = WireLimits(),
        group: EventLoopGroup = .shared, logger: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        var table: [String: RPCHandler] = [:]
        for s in services { for h in s.rpcHandlers { table[h.method.path] = h } }
        if table[Grpc_Health_V1_Health.Method.check.path] == nil {
            let served = Set(table.values.map(\.method.service))
            for h in StandardHealthService(services: served).rpcHandlers { table[h.method.path] = h }
        }
        shared = Shared(name: name, handlers: table, secret: secret, limits: limits, logger: logger)
        self.group = group
    }

    /// Starts listening; returns the bound port (useful with port 0).
    @discardableResult
    public func start(host: String = "127.0.0.1", port: UInt16) throws -> UInt16 {
        let (fd, bound) = try Posix.listen(host: host, port: port)
        let loop = group.nextLoop()
        let l = Listener(fd: fd, loop: loop, group: group, shared: shared)
        listener.withLock { $0 = l }
        loop.execute { loop.register(l) }
        return bound
    }

    /// Open connections right now.
    public var connectionCount: Int { shared.connections.withLock { $0.count } }

    /// Stops accepting, sends GOAWAY to every connection, lets open calls
    /// finish, and returns when all connections closed. Connections still
    /// open after `timeout` (long streams) are closed, which cancels their
    /// calls, so nothing outlives the server.
    public func shutdown(timeout: Duration = .seconds(10)) async {
        if let l = listener.withLock({ l -> Listener? in defer { l = nil }; return l }) {
            // Wait until the port is really closed: after shutdown nothing may connect.
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                l.loop.execute {
                    l.loop.deregisterAndClose(l.fd)
                    done.resume()
                }
            }
        }
        for c in shared.connections.withLock({ Array($0.values) }) {
            c.loop.execute { c.beginDrain() }
        }
        let end = ContinuousClock.now + timeout
        while connectionCount > 0 && ContinuousClock.now < end {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for c in shared.connections.withLock({ Array($0.values) }) {
            c.loop.execute { c.closeAfterFlush() }
        }
        let hardEnd = ContinuousClock.now + .seconds(1)
        while connectionCount > 0 && ContinuousClock.now < hardEnd {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Accepts connections and hands them to loops round-robin.
    private final class Listener: LoopHandler, @unchecked Sendable {
        let fd: Int32
        let loop: EventLoop
        let group: EventLoopGroup
        let shared: Shared

        init(fd: Int32, loop: EventLoop, group: EventLoopGroup, shared: Shared) {
            self.fd = fd
            self.loop = loop
            self.group = group
            self.shared = shared
        }

        func readable() {
            Posix.acceptAll(self, on: loop, shed: {}) { cfd, peer in
                let target = group.nextLoop()
                let shared = self.shared
                target.execute {
                    let c = ServerConnection(fd: cfd, loop: target, peer: peer, server: shared)
                    shared.connections.withLock { $0[ObjectIdentifier(c)] = c }
                    target.register(c)
                }
            }
        }

        func writable() {}
        func flushDeferred() {}
        func tick(nowMillis: Int64) {}
    }
}
