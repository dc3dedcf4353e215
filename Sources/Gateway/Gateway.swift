import Foundation
import Synchronization
import Wire

/// The gRPC front door: HTTP/2 (h2c and TLS) in, Wire calls out.
///
/// Connections are spread over the shared event loops. A unary call is
/// forwarded on its connection's loop with no task (`UnaryForward`); a
/// streaming call runs as a task preferring that loop. Either way HTTP/2
/// work, the forwarding logic and the Wire client run without thread hops.
public final class Gateway: Sendable {
    /// What every connection and call shares; immutable after start.
    final class Core: GatewayRequestHandler, @unchecked Sendable {
        // @unchecked: every stored property is immutable and Sendable or internally locked.
        let router: Router
        let policy: AccessPolicy
        let limiter: RateLimiter
        let metrics: Metrics
        let accessLog: AccessLog
        let tokens: TokenVerifier
        let limits: HTTPLimits
        let messageLimits: [String: Int]
        /// What all connections together may make the gateway hold.
        let budget: BufferBudget
        let log: @Sendable (String) -> Void
        /// The proto3 JSON mapping of every described message, for JSON calls.
        let json: JSONTranscoder
        let cors: CORSPolicy
        let console = ConsoleSite()
        /// The backends' figures, appended to the gateway's own at /metrics.
        let services: ServiceMetrics
        let connections = Mutex<[ObjectIdentifier: GatewayConnection]>([:])

        init(config: GatewayConfig, router: Router, json: ProtoJSON, scrapes: [ServiceMetrics.Replica]) {
            self.router = router
            services = ServiceMetrics(replicas: scrapes)
            self.json = JSONTranscoder(mapping: json)
            cors = CORSPolicy(origins: Set(config.corsOrigins))
            policy = config.policy
            limiter = RateLimiter(rules: config.rateLimits)
            accessLog = AccessLog(sink: config.log)
            tokens = TokenVerifier(secret: config.jwtSecret, requireExpiry: !config.allowTokensWithoutExpiry)
            var limits = HTTPLimits()
            limits.maxMessageBytes = config.maxMessageBytes
            limits.maxConcurrentStreams = config.maxConcurrentStreams
            limits.idleTimeoutMillis = Int64(config.idleTimeoutSeconds * 1000)
            limits.headerTimeoutMillis = Int64(config.headerTimeoutSeconds * 1000)
            limits.handshakeTimeoutMillis = Int64(config.tlsHandshakeTimeoutSeconds * 1000)
            // A connection may always hold one message at the largest limit, with a window of credit beside it.
            let largestMessage = ([config.maxMessageBytes] + config.maxMessageBytesByMethod.values).max()!
            limits.maxConnectionBufferedBytes = max(config.maxConnectionBufferedBytes, largestMessage + limits.connectionWindowSize)
            messageLimits = config.maxMessageBytesByMethod
            limits.flood.minPingIntervalMillis = Int64(config.minPingIntervalSeconds * 1000)
            self.limits = limits
            let budget = BufferBudget(capBytes: config.maxBufferedBytes)
            self.budget = budget
            metrics = Metrics(knownMethods: router.knownPaths, bufferedBytes: { budget.usedBytes })
            log = config.log
        }

        /// Request headers are complete (loop thread).
        func handle(_ stream: CallStream) {
            let path = stream.requestHeaders.first { $0.name == ":path" }?.value ?? ""
            let method = stream.requestHeaders.first { $0.name == ":method" }?.value ?? ""
            if method == "OPTIONS" {  // a browser's CORS preflight
                let (status, headers) = cors.preflight(
                    origin: stream.requestHeaders.first { $0.name == "origin" }?.value,
                    requestedHeaders: stream.requestHeaders.first { $0.name == "access-control-request-headers" }?.value)
                stream.respondHTTP(status: status, contentType: "text/plain", body: [], headers: headers)
                return
            }
            if stream.connection is HTTP1Connection,
                GRPCRequest.Framing(contentType: stream.requestHeaders.first { $0.name == "content-type" }?.value) == .grpc
            {
                let why = "gRPC needs HTTP/2 (h2c here, or h2 over TLS); over HTTP/1.1 use gRPC-Web or JSON"
                stream.respondHTTP(status: 505, contentType: "text/plain", body: Array((why + "\n").utf8))
                return
            }
            if method == "GET" && ConsoleSite.serves(path) {
                let a = console.answer(path: path)
                stream.respondHTTP(status: a.status, contentType: a.contentType, body: a.body, headers: a.headers)
                return
            }
            if method == "GET" && path == "/healthz" {
                stream.respondHTTP(status: 200, contentType: "text/plain", body: Array("ok\n".utf8))
                return
            }
            if method == "GET" && path == "/metrics" {
                let own = metrics.render()
                let services = self.services
                Task(executorPreference: stream.loop) {
                    let text = own + (await services.current())
                    stream.respondHTTP(status: 200, contentType: "text/plain; version=0.0.4", body: Array(text.utf8))
                }
                return
            }
            let correlationID = CorrelationID.accept(stream.requestHeaders.first { $0.name == "x-correlation-id" }?.value)
            let corsHeaders = cors.responseHeaders(origin: stream.requestHeaders.first { $0.name == "origin" }?.value)
            // Answers, refusals included, are written the way the request was.
            stream.framing = GRPCRequest.Framing(contentType: stream.requestHeaders.first { $0.name == "content-type" }?.value) ?? .grpc
            let request: GRPCRequest
            do {
                request = try GRPCRequest(headers: stream.requestHeaders)
            } catch {
                switch error {
                case .http(let status, let why):
                    accessLog.line("refused non-gRPC request \(method) \(path): \(why)", correlationID: correlationID)
                    stream.respondHTTP(status: status, contentType: "text/plain", body: Array((why + "\n").utf8))
                case .status(let e):
                    if stream.framing == .json {
                        JSONResponse.fail(stream, e, headers: [("x-correlation-id", correlationID)] + corsHeaders)
                    } else {
                        stream.finish(
                            trailers: GRPCResponseHeaders.trailers(code: e.code, message: e.message, metadata: e.metadata),
                            headers: [("x-correlation-id", correlationID), ("grpc-accept-encoding", "identity")] + corsHeaders)
                    }
                }
                return
            }
            if let limit = messageLimits[request.path] { stream.setMaxMessageBytes(limit) }
            if stream.connection.isOverBudget {
                // The client does not read what it asked for: no new work for it until it does.
                let e = RPCError(.resourceExhausted, "this connection has \(stream.connection.bufferedBytes) bytes of responses unread; read them first")
                if request.framing == .json {
                    JSONResponse.fail(stream, e, headers: [("x-correlation-id", correlationID)])
                } else {
                    stream.finish(
                        trailers: GRPCResponseHeaders.trailers(code: e.code, message: e.message, metadata: e.metadata),
                        headers: [("x-correlation-id", correlationID)])
                }
                return
            }
            CallForwarder(gateway: self, stream: stream, request: request, correlationID: correlationID).start()
        }

        /// Out of descriptors: up to `count` of the oldest connections that
        /// are idle (no call open, no request or response for a second) are
        /// closed, each on its own loop, so new clients can be accepted. A
        /// client calling now and then between idle moments is not idle.
        func shedIdleConnections(count: Int = 16) {
            let oldest = connections.withLock { Array($0.values) }.sorted { $0.acceptedAt < $1.acceptedAt }
            let left = Atomic<Int>(count)
            for c in oldest {
                c.loop.execute {
                    guard c.isIdle(forMillis: 1_000), left.subtract(1, ordering: .relaxed).newValue >= 0 else { return }
                    c.close("shed: out of file descriptors")
                }
            }
        }

        func connection(_ old: GatewayConnection, handedOverTo new: GatewayConnection) {
            connections.withLock {
                $0[ObjectIdentifier(old)] = nil
                $0[ObjectIdentifier(new)] = new
            }
        }

        func refused(peer: String, status: Int, reason: String) {
            var line = JSONLine()
            line.field("event", "HTTP/1.1 request refused")
            line.field("peer", peer)
            line.number("status", status)
            line.field("reason", reason)
            log(line.finish())
        }

        func connectionClosed(_ c: GatewayConnection) {
            connections.withLock { $0[ObjectIdentifier(c)] = nil }
            metrics.connectionClosed()
            if let reason = c.closeReason {
                var line = JSONLine()
                line.field("event", "connection closed")
                line.field("peer", c.peer)
                line.field("protocol", c.httpVersion)
                line.field("reason", reason)
                log(line.finish())
            }
        }
    }

    let core: Core
    private let config: GatewayConfig
    private let group: EventLoopGroup
    private let tlsContext: TLSContext?
    private let listeners = Mutex<[Listener]>([])
    private let backendChannels: [any ClosableChannel]

    /// Why a gateway cannot start with its configuration.
    public struct ConfigurationError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(config: GatewayConfig, group: EventLoopGroup = .shared) throws {
        // Fail closed: a token signed with an empty key, or Wire auth with one, proves nothing.
        for (name, secret) in [("JWT", config.jwtSecret), ("internal", config.internalSecret)]
        where secret.count < PeerAuthentication.minimumSecretBytes {
            throw ConfigurationError(description: "the \(name) secret is shorter than \(PeerAuthentication.minimumSecretBytes) bytes; refusing to start")
        }
        self.config = config
        self.group = group
        tlsContext = try config.tls.map { try TLSContext(certificateFile: $0.certificateFile, keyFile: $0.keyFile) }
        // One replica: its loop-local channel, the cheapest path. Several: balanced, health-checked, retried when unsent.
        let channels = config.backends.map { b -> any ClosableChannel in
            if b.replicas.count == 1 {
                return LoopLocalChannel(host: b.replicas[0].host, port: b.replicas[0].port, secret: config.internalSecret, peerName: "gateway", group: group)
            }
            return ReplicaChannel(name: b.name, addresses: b.replicas, secret: config.internalSecret, peerName: "gateway", group: group)
        }
        let backends = Array(zip(config.backends, channels.map { $0 as any RPCChannel }))
        let health = HealthService(backends: backends)
        let reflection = ReflectionService(files: config.files)
        let local = InProcessChannel(services: [health, reflection, ReflectionV1AlphaService(v1: reflection)])
        var methods = config.methods
        methods += Grpc_Health_V1_Health.Method.all + Grpc_Reflection_V1_ServerReflection.Method.all
            + Grpc_Reflection_V1alpha_ServerReflection.Method.all
        let router = Router(
            local: [
                Grpc_Health_V1_Health.name: local, Grpc_Reflection_V1_ServerReflection.name: local,
                Grpc_Reflection_V1alpha_ServerReflection.name: local,
            ],
            backends: backends, methods: methods, internalMethods: config.internalMethods)
        // Metrics are scraped from every replica (a balanced channel reaches one of them): a channel of its own each.
        var scrapes: [ServiceMetrics.Replica] = []
        var scrapeChannels: [any ClosableChannel] = []
        for (b, channel) in zip(config.backends, channels) {
            for r in b.replicas {
                let own: any ClosableChannel = b.replicas.count == 1 ? channel
                    : LoopLocalChannel(host: r.host, port: r.port, secret: config.internalSecret, peerName: "gateway-metrics", group: group)
                if b.replicas.count > 1 { scrapeChannels.append(own) }
                scrapes.append(.init(service: b.name, address: "\(r.host):\(r.port)", channel: own))
            }
        }
        backendChannels = channels + scrapeChannels
        core = Core(
            config: config, router: router, json: ProtoJSON(schema: try ProtoSchema(compiled: config.files)), scrapes: scrapes)
    }

    /// Starts listening; returns the bound h2c port and TLS port (if configured).
    @discardableResult
    public func start() throws -> (h2c: UInt16, tls: UInt16?) {
        let (fd, port) = try Posix.listen(host: config.host, port: config.port)
        var bound: (UInt16, UInt16?) = (port, nil)
        var ls = [Listener(fd: fd, tls: nil, gateway: self)]
        if let tls = config.tls, let tlsContext {
            let (tfd, tport) = try Posix.listen(host: tls.host, port: tls.port)
            ls.append(Listener(fd: tfd, tls: tlsContext, gateway: self))
            bound.1 = tport
        }
        listeners.withLock { $0 = ls }
        for l in ls { l.loop.execute { l.loop.register(l) } }
        return bound
    }

    public var connectionCount: Int { core.connections.withLock { $0.count } }
    public var metricsText: String { core.metrics.render() }

    /// Stops accepting, sends GOAWAY to every connection, lets open calls
    /// finish, and returns when all connections closed (or after `timeout`).
    public func shutdown(timeout: Duration = .seconds(10)) async {
        for l in listeners.withLock({ l -> [Listener] in defer { l = [] }; return l }) {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                l.loop.execute {
                    l.loop.deregisterAndClose(l.fd)
                    done.resume()
                }
            }
        }
        for c in core.connections.withLock({ Array($0.values) }) { c.loop.execute { c.beginDrain() } }
        let end = ContinuousClock.now + timeout
        while connectionCount > 0 && ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(10)) }
        for c in core.connections.withLock({ Array($0.values) }) { c.loop.execute { c.close("shutdown timeout") } }
        for ch in backendChannels { ch.close() }
    }

    /// Accepts connections and hands each to a loop.
    private final class Listener: LoopHandler, @unchecked Sendable {
        let fd: Int32
        let loop: EventLoop
        let tls: TLSContext?
        let gateway: Gateway  // the gateway keeps its listeners until shutdown, which drops them

        init(fd: Int32, tls: TLSContext?, gateway: Gateway) {
            self.fd = fd
            self.tls = tls
            self.gateway = gateway
            loop = gateway.group.nextLoop()
        }

        func readable() {
            Posix.acceptAll(self, on: loop, shed: { gateway.core.shedIdleConnections() }) { cfd, peer in
                let target = gateway.group.nextLoop()
                let core = gateway.core
                let tls = self.tls
                target.execute {
                    let transport: ByteTransport
                    if let tls {
                        guard let t = TLSTransport(fd: cfd, context: tls) else { close(cfd); return }
                        transport = t
                    } else {
                        transport = PlainTransport(fd: cfd)
                    }
                    let c = HTTP2Connection(
                        fd: cfd, loop: target, peer: peer, transport: transport, limits: core.limits, budget: core.budget, handler: core,
                        onClose: { core.connectionClosed($0) })
                    core.connections.withLock { $0[ObjectIdentifier(c)] = c }
                    core.metrics.connectionOpened()
                    target.register(c, writable: tls != nil)
                    // Our SETTINGS go out with the answer to the client's first bytes: an HTTP/1
                    // client must get an HTTP/1 answer it can read (`refuseHTTP1`), not a binary frame.
                }
            }
        }

        func writable() {}
        func tick(nowMillis: Int64) {}
        func flushDeferred() {}
    }
}
