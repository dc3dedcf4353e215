import Foundation
import Synchronization
import Wire

/// `croupier bench wire`: unary calls/s and latency at 1, 16 and 64 calls in
/// flight on 1 and 4 connections, streamed messages/s, and the server's RSS
/// with 1,000 idle authenticated connections — next to a bare
/// length-prefixed echo on raw sockets (the anchor `echo.c`) measured in the
/// same run as the ceiling. Server and client are separate processes.
enum WireBenchmark {
    static let secret = Array("croupier-bench-internal-secret".utf8)
    static let echo = MethodDescriptor(service: "bench.Bench", method: "Echo", kind: .unary)

    /// Echoes a 32-byte payload: the same work as the echo anchor plus RPC machinery.
    struct EchoService: RPCService {
        var rpcHandlers: [RPCHandler] {
            [.unary(WireBenchmark.echo) { (request: Grpc_Testing_Payload, _: ServerContext) async throws -> Grpc_Testing_Payload in request }]
        }
    }

    /// Streams `response_parameters.count` messages for the streaming figure.
    struct StreamService: Grpc_Testing_TestService.ServiceProtocol {
        func emptyCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty { .init() }
        func unaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse { .init() }
        func cacheableUnaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse { .init() }
        func streamingOutputCall(request: Grpc_Testing_StreamingOutputCallRequest, response: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext) async throws {
            let message = Grpc_Testing_StreamingOutputCallResponse.with { $0.payload = .with { $0.body = .init(repeating: 1, count: 32) } }
            for _ in request.responseParameters { try await response.write(message) }
        }
        func streamingInputCall(request: RPCAsyncSequence<Grpc_Testing_StreamingInputCallRequest>, context: ServerContext) async throws -> Grpc_Testing_StreamingInputCallResponse { .init() }
        func fullDuplexCall(request: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>, response: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext) async throws {}
        func halfDuplexCall(request: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>, response: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext) async throws {}
        func unimplementedCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty { .init() }
    }

    /// `croupier bench wire-server PORT`: the benchmark's server process.
    static func serve(port: UInt16) async throws -> Never {
        Posix.raiseDescriptorLimit()
        let server = WireServer(name: "bench", services: [EchoService(), StreamService()], secret: secret)
        let bound = try server.start(port: port)
        FileHandle.standardOutput.write(Data("READY \(bound)\n".utf8))
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    /// `total` echo calls with `inflight` outstanding over `conns` connections,
    /// after a warm-up, each with the options `callers` gives.
    static func measure(port: UInt16, conns: Int, inflight: Int, total: Int, callers: Callers) async throws -> CallRates {
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: secret, peerName: "bench", connections: conns)
        defer { channel.close() }
        let request = Grpc_Testing_Payload.with { $0.body = Array(repeating: 7, count: 32) }
        // Each caller calls `unary` in its own loop, as an application would
        // (see `measureCallers`).
        func run(_ total: Int) async throws -> CallRates {
            try await measureCallers(inflight: inflight, total: total, executor: channel.executor) { turns in
                var latencies: [Double] = []
                while turns.next() != nil {
                    let t0 = LoopClock.now()
                    let _: Grpc_Testing_Payload = try await channel.unary(echo, request, options: callers.options())
                    latencies.append(microseconds(sinceNanos: t0))
                }
                return latencies
            }
        }
        progress("shape \(conns)x\(inflight): warm-up")
        _ = try await run(warmupCalls(total))
        progress("shape \(conns)x\(inflight): measuring")
        return try await run(total)
    }

    /// The same calls made with no task per caller: each of `inflight`
    /// callers lives on the channel's loop, and its `startUnary` completion
    /// (encode, call, decode, as `unary` does) starts its next call there.
    static func measureOnLoop(port: UInt16, inflight: Int, total: Int) async throws -> CallRates {
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: secret, peerName: "bench")
        defer { channel.close() }
        let _: Grpc_Testing_Payload = try await channel.unary(echo, Grpc_Testing_Payload.with { $0.body = [7] }, options: CallOptions())  // connect
        progress("shape 1x\(inflight) on the loop: warm-up")
        _ = try await LoopCallers(channel: channel, total: warmupCalls(total)).run(inflight: inflight)
        progress("shape 1x\(inflight) on the loop: measuring")
        return try await LoopCallers(channel: channel, total: total).run(inflight: inflight)
    }

    /// Callers on a channel's loop, chained through `startUnary` completions.
    final class LoopCallers: @unchecked Sendable {
        // @unchecked: after `run` hands it to the loop, only the loop thread touches it.
        let channel: WireChannel
        let total: Int
        let request = Grpc_Testing_Payload.with { $0.body = Array(repeating: 7, count: 32) }
        var issued = 0
        var latencies: [Double] = []
        var failure: Error?
        var finished: CheckedContinuation<[Double], Error>?

        init(channel: WireChannel, total: Int) {
            self.channel = channel
            self.total = total
            latencies.reserveCapacity(total)
        }

        func run(inflight: Int) async throws -> CallRates {
            let start = ContinuousClock.now
            let latencies = try await withCheckedThrowingContinuation { c in
                channel.loop.execute { [self] in
                    finished = c
                    for _ in 0..<inflight { issue() }
                }
            }
            return CallRates(calls: total, since: start, latencies: latencies)
        }

        private func issue() {
            guard issued < total else { return }
            issued += 1
            let t0 = LoopClock.now()
            channel.startUnary(echo, request.serializedBytes(), options: CallOptions()) { [self] outcome in
                do {
                    _ = try RPCCodec.decode(Grpc_Testing_Payload.self, try outcome.get().message, failure: .internal)
                } catch {
                    failure = failure ?? error
                }
                latencies.append(microseconds(sinceNanos: t0))
                if latencies.count == total {
                    if let failure { finished?.resume(throwing: failure) } else { finished?.resume(returning: latencies) }
                    finished = nil
                } else {
                    issue()
                }
            }
        }
    }

    /// How the benchmark's callers wait for their calls.
    enum Callers {
        /// A task per caller, preferring the channel's loop (`unary`).
        case tasks
        /// The same, with a 5 s deadline on every call.
        case tasksWithDeadlines
        /// The same, every call carrying a correlation id and a traceparent,
        /// as the gateway forwards them: the server parses both and runs the
        /// handler under them (`RequestContext`).
        case tasksWithRequestContext
        /// No tasks: callers on the loop, chained by `startUnary` completions.
        case onLoop

        /// As `--callers` names it.
        var name: String {
            switch self {
            case .tasks: "tasks"
            case .tasksWithDeadlines: "deadline"
            case .tasksWithRequestContext: "traced"
            case .onLoop: "loop"
            }
        }

        /// One call's options.
        func options() -> CallOptions {
            switch self {
            case .tasksWithDeadlines: return .timeout(.seconds(5))
            case .tasksWithRequestContext: return Self.traced
            case .tasks, .onLoop: return CallOptions()
            }
        }

        private static let traced: CallOptions = {
            var options = CallOptions()
            RequestContext(correlationID: "bench-0123456789abcdef0123456789abcdef", trace: TraceContext.start()).propagate(into: &options.metadata)
            return options
        }()

        var label: String {
            switch self {
            case .tasks: ""
            case .tasksWithDeadlines: ", 5 s deadline each"
            case .tasksWithRequestContext: ", a correlation id and traceparent on each (the server runs the handler under them)"
            case .onLoop: ", callers on the loop (`startUnary`, no tasks)"
            }
        }
    }

    static func warmupCalls(_ total: Int) -> Int { min(total / 5, 20_000) }

    /// CPU time (user + system) a process has used, in seconds.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func streamRate(port: UInt16, messages: Int) async throws -> Double {
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: secret, peerName: "bench")
        defer { channel.close() }
        let client = Grpc_Testing_TestService.Client(channel: channel)
        let request = Grpc_Testing_StreamingOutputCallRequest.with {
            $0.responseParameters = Array(repeating: .with { $0.size = 32 }, count: messages)
        }
        let count = SharedCounter()
        try await client.streamingOutputCall(request) { _ in count.value.add(1, ordering: .relaxed) }  // warm-up
        count.value.store(0, ordering: .relaxed)
        let start = ContinuousClock.now
        try await client.streamingOutputCall(request) { _ in count.value.add(1, ordering: .relaxed) }
        let d = (ContinuousClock.now - start).components
        return Double(count.value.load(ordering: .relaxed)) / (Double(d.seconds) + Double(d.attoseconds) / 1e18)
    }

    /// Server RSS before and after 1,000 authenticated connections that then sit idle.
    static func idleMemory(port: UInt16, serverPID: Int32, connections: Int) async throws -> (before: Int, after: Int) {
        let before = rssKiB(serverPID)
        var channels: [WireChannel] = []
        for _ in 0..<connections {
            let ch = WireChannel(host: "127.0.0.1", port: port, secret: secret, peerName: "idle")
            let _: Grpc_Testing_Payload = try await ch.unary(echo, Grpc_Testing_Payload(), options: CallOptions())
            channels.append(ch)
        }
        try await Task.sleep(for: .milliseconds(500))
        let after = rssKiB(serverPID)
        for ch in channels { ch.close() }
        return (before, after)
    }

    static func rssKiB(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return -1 }
        return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" })[1]) ?? -1
    }

    static func progress(_ line: String) {
        FileHandle.standardError.write(Data("bench wire: \(line)\n".utf8))
    }

    /// Starts a child process and waits for its first line, which must start with `ready`
    /// (e.g. "READY <port>"). `environment` is added to this process's; `quiet` drops its stderr.
    static func spawn(
        _ executable: String, _ arguments: [String], ready: String, environment: [String: String] = [:], quiet: Bool = false
    ) throws -> (Process, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if quiet { p.standardError = FileHandle.nullDevice }
        let out = Pipe()
        p.standardOutput = out
        try p.runStoppable()
        var text = ""
        while !text.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard text.hasPrefix(ready) else { throw LaunchError("\(arguments.joined(separator: " ")) did not start: \(text)") }
        return (p, text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// A reference client's run for one shape: calls/s, p50 and p99 from the
    /// `RESULT … rps=|qps= … p50_us= p99_us=` line that both the echo anchor
    /// and the grpc-go peer print.
    static func referenceRun(binary: String, _ arguments: [String], pinnedTo cpu: Int? = nil) throws -> CallRates? {
        let p = pinnable(binary, arguments, cpu: cpu)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        func field(_ name: String) -> Double? {
            guard let r = text.range(of: " " + name + "=") else { return nil }
            return Double(text[r.upperBound...].prefix { !$0.isWhitespace })
        }
        guard let rps = field("rps") ?? field("qps"), let p50 = field("p50_us"), let p99 = field("p99_us") else { return nil }
        return CallRates(rps: rps, p50: p50, p99: p99)
    }

    /// Starts a reference binary's server (`BINARY server PORT`, the echo
    /// anchor's and the grpc-go peer's form), quiet, and gives it time to listen.
    static func referenceServer(_ binary: String?, port: UInt16, pinnedTo cpu: Int? = nil) async throws -> Process? {
        guard let binary else { return nil }
        let p = pinnable(binary, ["server", String(port)], cpu: cpu)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.runStoppable()
        try await Task.sleep(for: .milliseconds(300))
        return p
    }

    /// `binary arguments`, run on CPU `cpu` alone when one is given (through `taskset`).
    static func pinnable(_ binary: String, _ arguments: [String], cpu: Int?) -> Process {
        let p = Process()
        if let cpu {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
            p.arguments = ["-c", String(cpu), binary] + arguments
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = arguments
        }
        return p
    }

    /// The grpc-go reference peer (`--grpcgo PATH`, else `scripts/grpcgo-peer`
    /// builds it from the anchors' source); nil under `--no-grpcgo`, or with
    /// the reason printed.
    static func grpcGoPeer(_ arguments: [String]) -> String? {
        if arguments.contains("--no-grpcgo") { return nil }
        if let path = option("--grpcgo", in: arguments) { return path }
        guard FileManager.default.isExecutableFile(atPath: "scripts/grpcgo-peer") else {
            print("warning: scripts/grpcgo-peer not found (run from the repository root); no grpc-go column")
            return nil
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "scripts/grpcgo-peer")
        let out = Pipe()
        p.standardOutput = out
        guard (try? p.run()) != nil else { return nil }
        let path = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        p.waitUntilExit()
        guard p.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) else {
            print("warning: the grpc-go peer could not be built (scripts/grpcgo-peer); no grpc-go column")
            return nil
        }
        return path
    }

    static func run(arguments: [String]) async throws -> Int32 {
        Posix.raiseDescriptorLimit()
        let total = Int(option("--calls", in: arguments) ?? "") ?? 100_000
        let outputPath = option("--out", in: arguments) ?? "bench/results/wire.md"
        let echoSource = option("--echo-source", in: arguments) ?? "../shared/anchors/echo.c"
        let only = option("--shape", in: arguments)  // e.g. "1x64": measure one shape (profiling)
        let me = CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0]
            : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0]

        // The ceiling: echo.c, built now, beside our server on the same machine.
        var echoBinary: String?
        if FileManager.default.fileExists(atPath: echoSource) {
            let bin = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-echo-\(getpid())").path
            let cc = Process()
            cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            cc.arguments = ["cc", "-O2", "-o", bin, echoSource]
            try cc.run()
            cc.waitUntilExit()
            if cc.terminationStatus == 0 { echoBinary = bin }
        }
        if echoBinary == nil { print("warning: echo anchor not available (\(echoSource)); reporting Wire figures alone") }
        let echoPort: UInt16 = 17_000 + UInt16(getpid() % 1000)
        let echoServer = try await referenceServer(echoBinary, port: echoPort)
        // The echo again with its client and server on one core: its work per
        // message is so small that a cross-CPU wake-up (20-40 us on this VM)
        // decides its speed, and sharing a core avoids them. Whichever
        // placement is faster for a shape is the ceiling.
        let oneCore = FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") ? 0 : nil
        let echoOneCorePort = echoPort + 1
        let echoOneCoreServer = oneCore == nil ? nil : try await referenceServer(echoBinary, port: echoOneCorePort, pinnedTo: oneCore)
        progress("echo anchor: \(echoBinary ?? "none")")
        // grpc-go 1.33 (its own client and server, raw 32-byte payloads, no
        // protobuf): the mature stack to stand beside, same shapes, same run.
        let grpcGo = grpcGoPeer(arguments)
        let grpcGoPort: UInt16 = 18_000 + UInt16(getpid() % 500)
        let grpcGoServer = try await referenceServer(grpcGo, port: grpcGoPort)
        progress("grpc-go peer: \(grpcGo ?? "none")")
        // The floor: the echo client against the echo protocol served on
        // Wire's own event loop, with and without an async handler per
        // message (see `EchoFloor`), to tell the I/O layer's and the async
        // handlers' costs from the RPC machinery's.
        var floors: [(mode: EchoFloor.Mode, process: Process, port: UInt16)] = []
        if echoBinary != nil {
            for mode in [EchoFloor.Mode.async, .sync] {
                let (p, ready) = try spawn(me, ["bench", "wire-floor", "0", mode.rawValue], ready: "READY", environment: ["CROUPIER_EVENT_LOOPS": "1"])
                floors.append((mode, p, UInt16(ready.split(separator: " ")[1])!))
            }
        }
        // One event loop, like the single-threaded echo server beside it: on
        // two cores shared with the client, a second loop thread only competes.
        let serverLoops = option("--server-loops", in: arguments) ?? "1"
        let (server, ready) = try spawn(
            me, ["bench", "wire-server", "0"], ready: "READY", environment: ["CROUPIER_EVENT_LOOPS": serverLoops])
        progress("server: \(ready)")
        let port = UInt16(ready.split(separator: " ")[1])!
        defer {
            server.terminate()
            echoServer?.terminate()
            echoOneCoreServer?.terminate()
            grpcGoServer?.terminate()
            for f in floors { f.process.terminate() }
        }

        // Each shape runs `rounds` times, Wire and echo alternating, and the
        // median of each is reported: on a shared VM single runs swing by 2x.
        let rounds = Int(option("--rounds", in: arguments) ?? "") ?? 3
        var rows: [String] = [], floorRows: [String] = []
        // The last shapes repeat 1 x 64 with a deadline on every call (timers
        // armed and cancelled per call), and with callers on the loop instead of tasks.
        let shapes: [(Int, Int, Callers)] = [
            (1, 1, .tasks), (1, 16, .tasks), (1, 64, .tasks), (4, 16, .tasks), (4, 64, .tasks), (1, 64, .tasksWithDeadlines),
            (1, 64, .tasksWithRequestContext), (1, 64, .onLoop),
        ]
        let onlyCallers = option("--callers", in: arguments)
        for (conns, inflight, callers) in shapes
        where (only == nil || only == "\(conns)x\(inflight)") && (onlyCallers == nil || onlyCallers == callers.name) {
            let calls = inflight == 1 ? total / 4 : total
            var wire: [(rates: CallRates, serverCPU: Double, clientCPU: Double)] = []
            var echo: [CallRates] = [], echoOneCore: [CallRates] = [], grpcGoRates: [CallRates] = []
            var echoServerCPU: [Double] = [], floorRates: [[(rates: CallRates, serverCPU: Double)]] = floors.map { _ in [] }
            for _ in 0..<rounds {
                let (serverBefore, clientBefore) = (cpuSeconds(server.processIdentifier), cpuSeconds(getpid()))
                let w = callers == .onLoop
                    ? try await measureOnLoop(port: port, inflight: inflight, total: calls)
                    : try await measure(port: port, conns: conns, inflight: inflight, total: calls, callers: callers)
                // CPU per measured call; the warm-up's calls are counted too (see `measure`).
                let measured = Double(calls + warmupCalls(calls)) / 1e6
                wire.append((w, (cpuSeconds(server.processIdentifier) - serverBefore) / measured,
                    (cpuSeconds(getpid()) - clientBefore) / measured))
                let shape = [String(conns), String(inflight), String(calls), String(warmupCalls(calls))]
                let echoBefore = echoServer.map { cpuSeconds($0.processIdentifier) }
                if let echoBinary, let e = try referenceRun(binary: echoBinary, ["client", String(echoPort)] + shape + ["60"]) {
                    echo.append(e)
                    if let echoServer, let echoBefore { echoServerCPU.append((cpuSeconds(echoServer.processIdentifier) - echoBefore) / measured) }
                }
                for (i, floor) in floors.enumerated() {
                    let before = cpuSeconds(floor.process.processIdentifier)
                    if let echoBinary, let f = try referenceRun(binary: echoBinary, ["client", String(floor.port)] + shape + ["60"]) {
                        floorRates[i].append((f, (cpuSeconds(floor.process.processIdentifier) - before) / measured))
                    }
                }
                if let echoBinary, echoOneCoreServer != nil,
                    let e = try referenceRun(binary: echoBinary, ["client", String(echoOneCorePort)] + shape + ["60"], pinnedTo: oneCore)
                {
                    echoOneCore.append(e)
                }
                if let grpcGo, let g = try referenceRun(binary: grpcGo, ["client", String(grpcGoPort)] + shape) { grpcGoRates.append(g) }
            }
            /// The run with the median rate.
            func median<Run>(_ runs: [Run], _ rps: (Run) -> Double) -> Run? {
                runs.isEmpty ? nil : runs.sorted { rps($0) < rps($1) }[runs.count / 2]
            }
            func median(_ rates: [CallRates]) -> CallRates? { median(rates, \.rps) }
            let w = median(wire) { $0.rates.rps }!
            let e = median(echo), e1 = median(echoOneCore)
            let ceiling = [e, e1].compactMap { $0 }.max { $0.rps < $1.rps }
            let ratio = ceiling.map { String(format: "%.0f%%", 100 * w.rates.rps / $0.rps) } ?? "n/a"
            func text(_ r: CallRates?) -> String { r.map { "\(formatRate($0.rps))/s, p50 \(Int($0.p50)) µs, p99 \(Int($0.p99)) µs" } ?? "n/a" }
            let g = median(grpcGoRates)
            let r = w.rates
            rows.append("| \(conns) | \(inflight)\(callers.label) | \(text(r)) | "
                + String(format: "%.2f / %.2f", w.serverCPU, w.clientCPU) + " | \(text(e)) | \(text(e1)) | \(ratio) | \(text(g)) |")
            print(rows.last!)
            func withCPU(_ runs: [(rates: CallRates, serverCPU: Double)]) -> String {
                guard let m = median(runs, { $0.rates.rps }) else { return "n/a" }
                return "\(formatRate(m.rates.rps))/s, " + String(format: "%.2f µs", m.serverCPU)
            }
            let echoCPU = median(echoServerCPU) { $0 }.map { String(format: "%.2f µs", $0) } ?? "n/a"
            guard !floors.isEmpty else { continue }  // no echo client to drive them
            floorRows.append("| \(conns) | \(inflight)\(callers.label) | \(formatRate(r.rps))/s, "
                + String(format: "%.2f µs", w.serverCPU) + " | " + floorRates.map(withCPU).joined(separator: " | ")
                + " | \(e.map { formatRate($0.rps) + "/s, " } ?? "")\(echoCPU) |")
            print(floorRows.last!)
        }
        let streamed = try await streamRate(port: port, messages: 100_000)
        // Idle memory on a fresh server, so the load shapes' allocations do not blur it.
        let (idleServer, idleReady) = try spawn(me, ["bench", "wire-server", "0"], ready: "READY")
        defer { idleServer.terminate() }
        let memory = try await idleMemory(
            port: UInt16(idleReady.split(separator: " ")[1])!, serverPID: idleServer.processIdentifier, connections: 1_000)
        let perConnection = Double(memory.after - memory.before) / 1_000
        // Where the gap is: only when the echo client was there to drive the floors.
        let floorTable = floorRows.isEmpty ? "" : """
            Where the gap is: the same shapes, the same run, with the echo anchor's client against three
            servers beside Wire. The Swift floor serves the echo protocol on Wire's own event loop
            (`croupier bench wire-floor`, `Sources/Croupier/Bench/EchoFloor.swift`): with an `async` handler
            per message (copied out, handled in one task per read that prefers the loop, as Wire's handlers
            are), and echoed in place. Each cell is calls/s and the server's CPU per call (user + system).
            The echo client is the same for the three; Wire's column has its own client.

            | connections | calls in flight | Wire, its server's CPU per call | echo client → Swift floor, async handler | echo client → Swift floor, echoed in place | echo client → `echo.c` server (placed by the scheduler) |
            | --- | --- | --- | --- | --- | --- |
            \(floorRows.joined(separator: "\n"))

            """
        let report = """
            # croupier bench wire

            - date: \(ISO8601DateFormatter().string(from: Date()))
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; loopback; server and client are separate processes on the same cores;
              the Wire server runs \(serverLoops) event loop(s) (`--server-loops`), the echo server one thread;
              Wire loops poll for \(EventLoopGroup.shared.spinMicros) µs after a busy iteration before sleeping (`CROUPIER_SPIN_MICROS`; echo.c does not)
            - Wire: `bench.Bench/Echo`, a 32-byte payload each way (34-byte protobuf message), authenticated connections;
              ceiling: the anchor `echo.c` (4-byte length + 32 bytes, epoll, no RPC machinery), same shapes, same run,
              placed by the scheduler and with client and server pinned to one core; the faster of the two is the ceiling;
              beside it the anchors' grpc-go peer (grpc-go 1.33, `/bench.Bench/Unary`, 32 raw bytes in, 34 out, no protobuf;
              its own client and server, default GOMAXPROCS), same shapes, same run
            - \(formatRate(Double(total))) measured calls per shape (a quarter at 1 in flight) after a warm-up;
              each figure is the median of \(rounds) rounds, Wire and echo alternating; CPU time per call
              (user + system, from /proc) shows where the cost is when the two cores are shared

            | connections | calls in flight | Wire | Wire CPU µs per call, server / client | raw echo, placed by the scheduler | raw echo, on one core | Wire / ceiling (the faster echo) | grpc-go 1.33, its client → its server |
            | --- | --- | --- | --- | --- | --- | --- | --- |
            \(rows.joined(separator: "\n"))

            \(floorTable)

            | what | figure |
            | --- | --- |
            | server-streamed messages (32-byte payload), one call | \(formatRate(streamed)) msg/s |
            | fresh server RSS before / after 1,000 idle authenticated connections | \(memory.before / 1024) MiB / \(memory.after / 1024) MiB (\(String(format: "%.1f", perConnection)) KiB per connection) |

            """
        try record(report, to: outputPath)
        return 0
    }
}
