import Synchronization

/// Calls one service that several replicas serve, each a Wire server of its
/// own (another process, perhaps another host).
///
/// - Balancing: each call goes to the healthy replica with the fewest calls
///   in flight through this channel (ties go round robin).
/// - Health: every `healthInterval` each replica is asked
///   `grpc.health.v1.Health/Check` over Wire, with that interval as deadline.
///   A replica that does not answer SERVING is ejected until it does. A call
///   that finds a replica unreachable ejects it at once.
/// - Retry: a call is sent again, to another replica, only when it provably
///   reached no handler (`RPCError.notProcessed`: never sent, or refused
///   before dispatch, as a draining server does). A call that may have run is
///   never repeated: its caller hears the failure.
///
/// When every replica is ejected, calls still try them (in turn), so a
/// whole-service restart is not held back by the health interval.
///
/// A replica that does not answer its health check at all (a cut link, a
/// hung host) has its connections reset: calls on them fail at once with
/// UNAVAILABLE, and frames still queued for it are dropped rather than
/// delivered when the link returns, when their callers have long given up
/// and may have sent newer writes elsewhere.
public final class ReplicaChannel: ClosableChannel {
    /// One replica's address and how this channel sees it.
    public struct ReplicaStatus: Sendable, Equatable {
        public var address: String
        public var healthy: Bool
        public var callsInFlight: Int
    }

    final class Replica: Sendable {
        let address: String
        let channel: LoopLocalChannel
        let inFlight = Atomic<Int>(0)
        let healthy = Atomic<Bool>(true)
        /// Health checks in a row that got no answer at all.
        let silentChecks = Atomic<Int>(0)

        init(address: String, channel: LoopLocalChannel) {
            self.address = address
            self.channel = channel
        }
    }

    public let name: String
    private let replicas: [Replica]
    private let cursor = Atomic<Int>(0)
    private let checker: Mutex<Task<Void, Never>?> = Mutex(nil)

    public init(
        name: String, addresses: [(host: String, port: UInt16)], secret: [UInt8], peerName: String,
        limits: WireLimits = WireLimits(), group: EventLoopGroup = .shared, healthInterval: Duration = .seconds(1)
    ) {
        precondition(!addresses.isEmpty, "a replica channel needs at least one address")
        self.name = name
        replicas = addresses.map { a in
            Replica(address: "\(a.host):\(a.port)",
                    channel: LoopLocalChannel(host: a.host, port: a.port, secret: secret, peerName: peerName, limits: limits, group: group))
        }
        let replicas = self.replicas
        // The task holds the replicas, not the channel: `close` ends it.
        checker.withLock { $0 = Task { await Self.checkHealth(replicas, every: healthInterval) } }
    }

    public var status: [ReplicaStatus] {
        replicas.map { ReplicaStatus(address: $0.address, healthy: $0.healthy.load(ordering: .relaxed), callsInFlight: $0.inFlight.load(ordering: .relaxed)) }
    }

    /// Whether a failure is worth another replica: the call reached no
    /// handler, and the cause is this replica (not the call itself, as an
    /// unknown method or a past deadline would be).
    static func retryable(_ error: RPCError) -> Bool {
        error.notProcessed && (error.code == .unavailable || error.code == .resourceExhausted)
    }

    /// The replica for the next call, skipping `tried`: the healthy one with
    /// the fewest calls in flight, scanning from a rotating start; if none is
    /// healthy, the next untried one.
    func pick(excluding tried: Set<Int>) -> Int? {
        let start = cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        var best: Int?
        var bestLoad = Int.max
        var fallback: Int?
        for k in 0..<replicas.count {
            let i = (start &+ k) % replicas.count
            guard !tried.contains(i) else { continue }
            if fallback == nil { fallback = i }
            let r = replicas[i]
            guard r.healthy.load(ordering: .relaxed) else { continue }
            let load = r.inFlight.load(ordering: .relaxed)
            if load < bestLoad { (best, bestLoad) = (i, load) }
        }
        return best ?? fallback
    }

    /// Runs `attempt` on replicas in `pick` order until one does not fail
    /// retryably; ejects each replica that did.
    private func withReplicas<T>(_ attempt: (Replica) async throws -> T) async throws -> T {
        var tried = Set<Int>()
        var last: RPCError?
        while let i = pick(excluding: tried) {
            tried.insert(i)
            let r = replicas[i]
            r.inFlight.add(1, ordering: .relaxed)
            defer { r.inFlight.subtract(1, ordering: .relaxed) }
            do {
                return try await attempt(r)
            } catch let e as RPCError where Self.retryable(e) {
                r.healthy.store(false, ordering: .relaxed)
                last = e
            }
        }
        throw last ?? RPCError(.unavailable, "no replica of \(name) is reachable")
    }

    public func unaryBytes(_ method: MethodDescriptor, _ request: [UInt8], options: CallOptions) async throws -> UnaryResponse {
        try await withReplicas { try await $0.channel.unaryBytes(method, request, options: options) }
    }

    /// A streaming call moves to another replica only if it failed before
    /// `body` began (no connection): once `body` runs, what it sent or passed
    /// on cannot be taken back.
    public func withCall<Result: Sendable>(
        _ method: MethodDescriptor, options: CallOptions,
        _ body: @Sendable (any RawClientCall) async throws -> Result
    ) async throws -> Result {
        try await withReplicas { r in
            let began = Atomic<Bool>(false)
            do {
                return try await r.channel.withCall(method, options: options) { call in
                    began.store(true, ordering: .relaxed)
                    return try await body(call)
                }
            } catch var e as RPCError where began.load(ordering: .relaxed) {
                e.notProcessed = false
                throw e
            }
        }
    }

    /// Starts the call on the chosen replica's loop-local channel; a
    /// retryable failure starts it again on the next replica, from the
    /// completion. `completion` runs once, with the last outcome.
    @discardableResult
    public func startUnary(
        _ method: MethodDescriptor, _ request: [UInt8], options: CallOptions,
        completion: @escaping @Sendable (Result<UnaryResponse, RPCError>) -> Void
    ) -> UnaryCallHandle {
        let call = RetryingUnary(channel: self, method: method, request: request, options: options, completion: completion)
        call.next()
        return UnaryCallHandle(call: .cancellable(call))
    }

    /// One unary call across replicas: the current attempt's handle, so a
    /// cancel reaches whichever replica has it. The completion is dropped
    /// once called: its caller (a gateway stream) holds this call's handle,
    /// and the completion holds the caller, a cycle that must end with the call.
    final class RetryingUnary: CallCancelling {
        private struct State {
            var tried = Set<Int>()
            /// The attempt `current` belongs to (a failure can start the next one before `startUnary` returns).
            var attempt = 0
            var current: UnaryCallHandle?
            var cancelled = false
            var completion: (@Sendable (Result<UnaryResponse, RPCError>) -> Void)?
        }

        private let channel: ReplicaChannel
        private let method: MethodDescriptor
        private let request: [UInt8]
        private let options: CallOptions
        private let state: Mutex<State>

        init(channel: ReplicaChannel, method: MethodDescriptor, request: [UInt8], options: CallOptions,
             completion: @escaping @Sendable (Result<UnaryResponse, RPCError>) -> Void) {
            self.channel = channel
            self.method = method
            self.request = request
            self.options = options
            var initial = State()
            initial.completion = completion
            state = Mutex(initial)
        }

        /// Delivers the outcome, once, and lets go of the caller and the last attempt.
        private func complete(_ result: Result<UnaryResponse, RPCError>) {
            let completion = state.withLock { s -> (@Sendable (Result<UnaryResponse, RPCError>) -> Void)? in
                defer { (s.completion, s.current) = (nil, nil) }
                return s.completion
            }
            completion?(result)
        }

        /// Starts the next attempt, or reports `last` when no replica is left.
        func next(after last: RPCError? = nil) {
            let chosen = state.withLock { s -> (replica: Int, attempt: Int)? in
                guard !s.cancelled, let i = channel.pick(excluding: s.tried) else { return nil }
                s.tried.insert(i)
                s.attempt += 1
                return (i, s.attempt)
            }
            guard let (i, attempt) = chosen else {
                let cancelled = state.withLock { $0.cancelled }
                complete(.failure(cancelled ? RPCError(.cancelled, "the call to \(method) was cancelled")
                    : last ?? RPCError(.unavailable, "no replica of \(channel.name) is reachable")))
                return
            }
            let r = channel.replicas[i]
            r.inFlight.add(1, ordering: .relaxed)
            let handle = r.channel.startUnary(method, request, options: options) { [self] result in
                r.inFlight.subtract(1, ordering: .relaxed)
                if case .failure(let e) = result, ReplicaChannel.retryable(e) {
                    r.healthy.store(false, ordering: .relaxed)
                    return next(after: e)
                }
                complete(result)
            }
            let cancelNow = state.withLock { s -> Bool in
                guard s.attempt == attempt, s.completion != nil else { return false }
                s.current = handle
                return s.cancelled
            }
            if cancelNow { handle.cancel() }
        }

        func cancel() {
            let current = state.withLock { s -> UnaryCallHandle? in
                s.cancelled = true
                return s.current
            }
            current?.cancel()
        }
    }

    /// Health checks in a row with no answer after which a replica's connections are reset.
    static let silentLimit = 3

    /// Asks each replica for its health every `interval`, until cancelled.
    static func checkHealth(_ replicas: [Replica], every interval: Duration) async {
        while !Task.isCancelled {
            await withTaskGroup(of: Void.self) { group in
                for r in replicas {
                    group.addTask {
                        let serving: Bool
                        do {
                            let answer = try await Grpc_Health_V1_Health.Client(channel: r.channel)
                                .check(.init(), options: .timeout(interval))
                            serving = answer.status == .serving
                            r.silentChecks.store(0, ordering: .relaxed)
                        } catch let e as RPCError where e.code == .deadlineExceeded {
                            // No answer at all, `silentLimit` times in a row (not one slow answer): the peer
                            // or the link is gone. Reset the connections so the calls written to them fail
                            // now and none is delivered when the link returns.
                            serving = false
                            if r.silentChecks.add(1, ordering: .relaxed).newValue >= silentLimit {
                                r.silentChecks.store(0, ordering: .relaxed)
                                r.channel.abortConnections()
                            }
                        } catch {
                            serving = false
                            r.silentChecks.store(0, ordering: .relaxed)
                        }
                        r.healthy.store(serving, ordering: .relaxed)
                    }
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    public func close() {
        checker.withLock { $0?.cancel() }
        for r in replicas { r.channel.close() }
    }
}
