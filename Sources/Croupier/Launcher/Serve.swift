import Dispatch
import Synchronization
import Foundation
import GameTablesService
import Gateway
import LoyaltyService
import StagingService
import Wire

/// `croupier serve <component>`: runs one component in this process until
/// SIGTERM or SIGINT, then drains gracefully (GOAWAY; open calls finish).
enum Serve {
    static func run(component: String, arguments: [String]) async throws -> Int32 {
        let config = try Configuration.load(arguments: arguments)
        if component == "gateway" { return try await runGateway(config) }
        let services: [any RPCService]
        var close: () -> Void = {}
        // Work that needs the server's own port (e.g. a channel back to itself).
        var afterStart: (UInt16) async throws -> Void = { _ in }
        switch component {
        case "interop": services = [InteropTestService()]
        case "loyalty":
            let store = try LoyaltyStore(path: config.databasePath("loyalty"), settings: config.loyalty)
            let metrics = LoyaltyMetrics()
            services = [
                LoyaltyAPI(store: store, log: LoyaltyLog(sink: { LogWriter.standardError.write($0) }, metrics: metrics)),
                MetricsService { try await metrics.render(alerts: store.alerts) },
            ]
            close = { store.close() }
        case "games":
            let role = try GamesRole(path: config.databasePath("games"), settings: config.games, log: { LogWriter.standardError.write($0) })
            try await role.start()
            services = role.services
            close = { role.stop() }
        case "rgs":
            let games = try channel(to: "games", config, peerName: "rgs")
            let role = try RgsRole(path: config.databasePath("rgs"), games: games, log: { LogWriter.standardError.write($0) })
            try await role.start()
            services = role.services
            close = {
                role.stop()
                games.close()
            }
        case "staging":
            let role = try StagingRole(path: config.databasePath("staging"), settings: config.staging, log: { LogWriter.standardError.write($0) })
            services = role.services
            // The importer calls the DiffQueue over Wire, as any other client would.
            let own = Mutex<WireChannel?>(nil)
            afterStart = { port in
                let channel = WireChannel(host: config.reachableHost, port: port, secret: config.internalSecret, peerName: "staging-importer")
                own.withLock { $0 = channel }
                try await role.start(diffQueue: channel)
            }
            close = {
                role.stop()
                own.withLock { $0?.close() }
            }
        default:
            throw LaunchError("unknown component '\(component)'; available: \(Configuration.components.joined(separator: ", "))")
        }
        var limits = WireLimits()
        if component == "staging" { limits.maxFrameSize = max(limits.maxFrameSize, UInt32(stagingMessageLimit(config) + 64)) }
        let server = WireServer(name: component, services: services, secret: config.internalSecret, limits: limits, logger: { line in
            FileHandle.standardError.write(Data("[\(component)] \(line)\n".utf8))
        })
        let port = try server.start(host: config.listenHost, port: UInt16(config.ports[component] ?? 0))
        try await afterStart(port)
        // The launcher waits for this line.
        FileHandle.standardOutput.write(Data("READY \(component) \(config.reachableHost):\(port)\n".utf8))
        await waitForTerminationSignal()
        FileHandle.standardError.write(Data("[\(component)] draining\n".utf8))
        await server.shutdown(timeout: .seconds(10))
        close()
        LogWriter.standardError.flush()
        return 0
    }
}

extension Serve {
    /// Every method and descriptor the gateway can route and reflect.
    static let methods: [MethodDescriptor] = Grpc_Testing_TestService.Method.all + Grpc_Testing_UnimplementedService.Method.all
        + Croupier_Loyalty_V1_LoyaltyService.Method.all + Croupier_Gametables_V1_RgsCleanup.Method.all
        + Croupier_Gametables_V1_GamesCleanup.Method.all + Croupier_Gametables_V1_GameRuntime.Method.all
        + Croupier_Staging_V1_StagingService.Method.all + Croupier_Staging_V1_DiffQueue.Method.all
    static let files: [ProtoFileDescriptor] = [
        .croupier_loyalty_v1_loyalty, .croupier_gametables_v1_gametables, .croupier_staging_v1_staging,
        .grpc_testing_test, .grpc_testing_messages, .grpc_testing_empty, .grpc_health_v1_health, .grpc_reflection_v1_reflection,
        .grpc_reflection_v1alpha_reflection,
    ]

    /// A channel to another component: its one replica, or all of them
    /// balanced (`ReplicaChannel`).
    static func channel(to component: String, _ config: Configuration, peerName: String) throws -> any ClosableChannel {
        let addresses = try config.replicaAddresses(component)
        if addresses.count == 1 {
            return WireChannel(host: addresses[0].host, port: addresses[0].port, secret: config.internalSecret, peerName: peerName)
        }
        return ReplicaChannel(name: component, addresses: addresses, secret: config.internalSecret, peerName: peerName)
    }

    /// The largest request staging takes: an UploadImage with an image at its limit, and room for the other fields.
    static func stagingMessageLimit(_ config: Configuration) -> Int { max(4 << 20, config.staging.maxImageBytes + (1 << 20)) }

    static func gatewayConfig(_ config: Configuration) throws -> GatewayConfig {
        let backends = try Configuration.backends.map { b in
            GatewayConfig.Backend(name: b.component, replicas: try config.replicaAddresses(b.component), packages: b.packages)
        }
        var g = GatewayConfig(
            jwtSecret: config.gateway.jwtSecret, internalSecret: config.internalSecret, backends: backends, methods: methods,
            files: files, policy: AccessPolicy(publicServices: GatewayConfig.defaultPublicServices, permissions: config.gateway.permissions),
            rateLimits: config.gateway.rateLimits.map { RateLimitRule(method: $0.method, limit: $0.limit, periodSeconds: $0.periodSeconds) },
            log: { LogWriter.standardError.write($0) })
        g.internalMethods = StagingPermission.internalMethods
        // Images go up to staging's own limit, so an oversized one gets the service's INVALID_ARGUMENT naming it.
        g.maxMessageBytesByMethod[Croupier_Staging_V1_StagingService.Method.uploadImage.path] = stagingMessageLimit(config)
        (g.host, g.port) = try splitAddress(config.gateway.listen)
        (g.idleTimeoutSeconds, g.headerTimeoutSeconds, g.tlsHandshakeTimeoutSeconds) = config.gateway.timeouts
        (g.maxBufferedBytes, g.maxConnectionBufferedBytes) = config.gateway.bufferLimits
        g.minPingIntervalSeconds = config.gateway.minPingIntervalSeconds
        g.allowTokensWithoutExpiry = config.gateway.allowTokensWithoutExpiry
        g.corsOrigins = config.gateway.corsOrigins
        if let cert = config.gateway.tlsCertificate, let key = config.gateway.tlsKey {
            let (host, port) = try splitAddress(config.gateway.tlsListen)
            g.tls = .init(host: host, port: port, certificateFile: cert, keyFile: key)
        }
        return g
    }

    static func runGateway(_ config: Configuration) async throws -> Int32 {
        let gateway = try Gateway(config: try gatewayConfig(config))
        let (port, tlsPort) = try gateway.start()
        if let tlsPort { FileHandle.standardError.write(Data("[gateway] TLS (h2) on 127.0.0.1:\(tlsPort)\n".utf8)) }
        FileHandle.standardOutput.write(Data("READY gateway 127.0.0.1:\(port)\n".utf8))
        await waitForTerminationSignal()
        FileHandle.standardError.write(Data("[gateway] draining\n".utf8))
        await gateway.shutdown(timeout: .seconds(10))
        LogWriter.standardError.flush()
        return 0
    }
}

/// Suspends until SIGTERM or SIGINT arrives, or, for a child of `croupier
/// up` (`CROUPIER_SUPERVISOR_PID`), until that supervisor is gone: a child
/// whose parent was SIGKILLed is re-parented, and stops as if told to, so no
/// orphan keeps its port. (Polling the parent is what PR_SET_PDEATHSIG does,
/// without its tie to the thread that spawned the child.)
func waitForTerminationSignal() async {
    let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
    var sources: [DispatchSourceProtocol] = []
    for sig in [SIGTERM, SIGINT] {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { continuation.yield(sig) }
        source.resume()
        sources.append(source)
    }
    if let supervisor = ProcessInfo.processInfo.environment["CROUPIER_SUPERVISOR_PID"].flatMap(Int32.init) {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now(), repeating: .milliseconds(250))
        timer.setEventHandler {
            guard getppid() != supervisor else { return }
            FileHandle.standardError.write(Data("croupier: the supervisor (pid \(supervisor)) is gone; stopping\n".utf8))
            continuation.yield(SIGTERM)
        }
        timer.resume()
        sources.append(timer)
    }
    for await _ in stream { break }
    for s in sources { s.cancel() }
}
