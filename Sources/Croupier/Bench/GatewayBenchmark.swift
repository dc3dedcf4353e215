import Foundation
import Gateway
import Glibc
import Wire

/// `croupier bench gateway`: h2load (an independent HTTP/2 load generator)
/// sends gRPC unary calls through the gateway to a Wire echo backend at
/// `-c 1 -m 1` and `-c 16 -m 8`; in the same run the same call goes straight
/// over Wire at the same concurrency. Also the gateway's RSS under load and
/// with 1,000 idle HTTP/2 connections. Backend and gateway are separate processes.
enum GatewayBenchmark {
    static let jwtSecret = Array("croupier-bench-gateway-jwt-secret".utf8)

    /// `croupier bench gateway-server BACKEND_PORT`: a gateway routing `bench.*` to the Wire echo backend.
    static func serve(backendPort: UInt16) async throws -> Never {
        Posix.raiseDescriptorLimit()
        var config = GatewayConfig(
            jwtSecret: jwtSecret, internalSecret: WireBenchmark.secret,
            backends: [.init(name: "bench", host: "127.0.0.1", port: backendPort, packages: ["bench"])],
            methods: [WireBenchmark.echo], files: [benchFile, .grpc_testing_messages], policy: AccessPolicy(publicServices: ["bench.Bench"], permissions: [:]),
            rateLimits: [], log: { _ in })
        config.port = 0
        let gateway = try Gateway(config: config)
        let (port, _) = try gateway.start()
        FileHandle.standardOutput.write(Data("READY \(port)\n".utf8))
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    /// `bench.Bench`'s descriptor (one method, `Echo(grpc.testing.Payload) returns (grpc.testing.Payload)`),
    /// encoded here rather than generated from a .proto: it is all the gateway needs to transcode JSON for it.
    static let benchFile: ProtoFileDescriptor = {
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] {
            var length: [UInt8] = []
            var n = bytes.count
            repeat {
                length.append(UInt8(n & 0x7F) | (n >= 0x80 ? 0x80 : 0))
                n >>= 7
            } while n > 0
            return [number << 3 | 2] + length + bytes
        }
        func text(_ number: UInt8, _ s: String) -> [UInt8] { field(number, Array(s.utf8)) }
        let method = text(1, "Echo") + text(2, ".grpc.testing.Payload") + text(3, ".grpc.testing.Payload")
        let service = text(1, "Bench") + field(2, method)
        let file = text(1, "bench/bench.proto") + text(2, "bench") + text(3, "grpc/testing/messages.proto") + field(6, service)
            + text(12, "proto3")
        return ProtoFileDescriptor(
            name: "bench/bench.proto", package: "bench", dependencies: ["grpc/testing/messages.proto"], imports: [.grpc_testing_messages],
            symbols: ["bench.Bench", "bench.Bench.Echo"], services: ["bench.Bench"], base64: Data(file).base64EncodedString())
    }()

    struct H2Load {
        let rps: Double
        let meanMicros: Double
        let maxMicros: Double
        let succeeded: Int
    }

    /// Runs h2load and parses its summary ("finished in …, N req/s", "time for request: min max mean").
    static func h2load(
        port: UInt16, path: String = "/bench.Bench/Echo", body: String, clients: Int, streams: Int, requests: Int, token: String? = nil,
        contentType: String = "application/grpc", http1: Bool = false
    ) throws -> H2Load {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/h2load")
        p.arguments = (http1 ? ["--h1"] : []) + [
            "-n", String(requests), "-c", String(clients), "-m", String(streams), "-d", body,
            "-H", "content-type: \(contentType)", "-H", "te: trailers", "http://127.0.0.1:\(port)\(path)",
        ] + (token.map { ["-H", "authorization: Bearer \($0)"] } ?? [])
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        func micros(_ s: Substring) -> Double {
            if s.hasSuffix("us") { return Double(s.dropLast(2)) ?? 0 }
            if s.hasSuffix("ms") { return (Double(s.dropLast(2)) ?? 0) * 1000 }
            if s.hasSuffix("s") { return (Double(s.dropLast()) ?? 0) * 1_000_000 }
            return 0
        }
        var rps = 0.0, mean = 0.0, maxLatency = 0.0, ok = 0
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ").filter { !$0.isEmpty }
            if line.hasPrefix("finished in"), let i = words.firstIndex(of: "req/s,") { rps = Double(words[i - 1]) ?? 0 }
            if line.hasPrefix("time for request:"), words.count >= 6 {
                maxLatency = micros(words[4])
                mean = micros(words[5])
            }
            if line.hasPrefix("status codes:"), let n = words.dropFirst(2).first { ok = Int(n) ?? 0 }
        }
        guard rps > 0 else { throw LaunchError("h2load gave no result:\n\(text)") }
        return H2Load(rps: rps, meanMicros: mean, maxMicros: maxLatency, succeeded: ok)
    }

    /// The gateway's `/metrics` text, fetched over h2c with curl.
    static func fetchMetrics(port: UInt16) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["curl", "-sf", "--http2-prior-knowledge", "http://127.0.0.1:\(port)/metrics"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0, text.contains("croupier_gateway") else { throw LaunchError("could not read the gateway's /metrics") }
        return text
    }

    /// Opens `count` HTTP/2 connections (preface + SETTINGS, then nothing).
    static func idleConnections(port: UInt16, count: Int) throws -> [Int32] {
        var fds: [Int32] = []
        let hello = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
        for _ in 0..<count {
            guard let fd = try? Posix.connectBlocking(host: "127.0.0.1", port: port) else {
                throw LaunchError("connect failed after \(fds.count) connections")
            }
            _ = hello.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            fds.append(fd)
        }
        return fds
    }

    static func run(arguments: [String]) async throws -> Int32 {
        Posix.raiseDescriptorLimit()
        let total = Int(option("--calls", in: arguments) ?? "") ?? 100_000
        let outputPath = option("--out", in: arguments) ?? "bench/results/gateway.md"
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/h2load") else {
            throw LaunchError("h2load not found: apt-get install nghttp2-client (scripts/setup does)")
        }
        let me = CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0]
            : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0]
        let (backend, backendReady) = try WireBenchmark.spawn(me, ["bench", "wire-server", "0"], ready: "READY")
        defer { backend.terminate() }
        let backendPort = UInt16(backendReady.split(separator: " ")[1])!
        let (gateway, gatewayReady) = try WireBenchmark.spawn(me, ["bench", "gateway-server", String(backendPort)], ready: "READY")
        defer { gateway.terminate() }
        let gatewayPort = UInt16(gatewayReady.split(separator: " ")[1])!

        // The request body: one length-prefixed 34-byte Payload, as in bench wire.
        var body: [UInt8] = []
        let request = Grpc_Testing_Payload.with { $0.body = Array(repeating: 7, count: 32) }.serializedBytes()
        body += [0, 0, 0, 0, UInt8(request.count)] + request
        let bodyPath = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-h2load-\(getpid()).bin").path
        try Data(body).write(to: URL(fileURLWithPath: bodyPath))
        defer { try? FileManager.default.removeItem(atPath: bodyPath) }

        // h2load straight at the anchors' grpc-go server (raw bytes echoed with "ok"
        // appended, no protobuf), same shapes, same run.
        let grpcGo = WireBenchmark.grpcGoPeer(arguments)
        let grpcGoPort: UInt16 = 18_500 + UInt16(getpid() % 500)
        let grpcGoServer = try await WireBenchmark.referenceServer(grpcGo, port: grpcGoPort)
        defer { grpcGoServer?.terminate() }

        let rssBefore = WireBenchmark.rssKiB(gateway.processIdentifier)
        var rows: [String] = []
        var peakUnderLoad = 0
        // The last shape sends a bearer token with every call: the gateway verifies it (a token sent to
        // a public method must still be valid), so this row prices authentication.
        let token = JWT.sign(
            JWT.Claims(subject: "bench", permissions: ["bench:echo"], expires: Int64(Date().timeIntervalSince1970) + 86_400), secret: jwtSecret)
        for (clients, streams, withToken) in [(1, 1, false), (16, 8, false), (16, 8, true)] {
            let calls = clients == 1 ? total / 4 : total
            let bearer = withToken ? token : nil
            /// A warm-up run, then the measured one.
            func load(port: UInt16, path: String = "/bench.Bench/Echo") throws -> H2Load {
                _ = try h2load(port: port, path: path, body: bodyPath, clients: clients, streams: streams, requests: WireBenchmark.warmupCalls(calls), token: bearer)
                return try h2load(port: port, path: path, body: bodyPath, clients: clients, streams: streams, requests: calls, token: bearer)
            }
            let g = try load(port: gatewayPort)
            // HTTP 200 does not mean the call succeeded (gRPC errors are trailers): the gateway's own counters must show no refusals.
            let metrics = try fetchMetrics(port: gatewayPort)
            guard !metrics.contains("croupier_gateway_auth_failures_total{") else {
                throw LaunchError("the gateway refused benchmark calls:\n\(metrics)")
            }
            peakUnderLoad = max(peakUnderLoad, WireBenchmark.rssKiB(gateway.processIdentifier))
            let w = try await WireBenchmark.measure(port: backendPort, conns: clients, inflight: clients * streams, total: calls, callers: .tasks)
            let go = try grpcGo.map { _ in try load(port: grpcGoPort, path: "/bench.Bench/Unary") }
            let goText = go.map { "\(formatRate($0.rps))/s, mean \(Int($0.meanMicros)) µs" } ?? "n/a"
            let row = "| -c \(clients) -m \(streams)\(withToken ? ", bearer token" : "") | \(formatRate(g.rps))/s, mean \(Int(g.meanMicros)) µs, max \(Int(g.maxMicros)) µs (\(g.succeeded) × HTTP 200) | \(formatRate(w.rps))/s, p50 \(Int(w.p50)) µs, p99 \(Int(w.p99)) µs | \(String(format: "%.0f%%", 100 * g.rps / w.rps)) | \(goText) |"
            print(row)
            rows.append(row)
        }
        // The same call as JSON (Connect's unary shape) and as gRPC-Web, beside gRPC, at -c 16 -m 8: throughput,
        // and the gateway's CPU per call (its /proc times around each measured run). What JSON adds per call
        // over gRPC is mostly the transcoding both ways (plus its answer's one-shot write): an upper bound on the codec's share.
        let jsonPath = bodyPath + ".json"
        try Data(#"{"body":"\#(Data(repeating: 7, count: 32).base64EncodedString())"}"#.utf8).write(to: URL(fileURLWithPath: jsonPath))
        defer { try? FileManager.default.removeItem(atPath: jsonPath) }
        var framingRows: [String] = []
        var grpcCPU = 0.0
        // HTTP/1.1 carries one call at a time per connection: 128 connections, as many calls in flight as -c 16 -m 8.
        for (label, contentType, file, http1) in [
            ("gRPC", "application/grpc", bodyPath, false), ("gRPC-Web", "application/grpc-web+proto", bodyPath, false),
            ("JSON", "application/json", jsonPath, false), ("gRPC-Web, HTTP/1.1 -c 128", "application/grpc-web+proto", bodyPath, true),
            ("JSON, HTTP/1.1 -c 128", "application/json", jsonPath, true),
        ] {
            let (clients, streams) = http1 ? (128, 1) : (16, 8)
            _ = try h2load(
                port: gatewayPort, body: file, clients: clients, streams: streams, requests: WireBenchmark.warmupCalls(total), contentType: contentType,
                http1: http1)
            let before = WireBenchmark.cpuSeconds(gateway.processIdentifier)
            let r = try h2load(port: gatewayPort, body: file, clients: clients, streams: streams, requests: total, contentType: contentType, http1: http1)
            let perCall = (WireBenchmark.cpuSeconds(gateway.processIdentifier) - before) / Double(total) * 1e6
            if label == "gRPC" { grpcCPU = perCall }
            let share = label == "gRPC" ? "–" : String(format: "%+.1f µs (%.0f%% of its CPU)", perCall - grpcCPU, 100 * max(0, perCall - grpcCPU) / perCall)
            let row = "| \(label) | \(formatRate(r.rps))/s, mean \(Int(r.meanMicros)) µs (\(r.succeeded) × HTTP 200) | \(String(format: "%.1f", perCall)) µs | \(share) |"
            print(row)
            framingRows.append(row)
        }
        let metricsAfter = try fetchMetrics(port: gatewayPort)
        guard !metricsAfter.contains("croupier_gateway_auth_failures_total{"),
              !metricsAfter.split(separator: "\n").contains(where: { $0.hasPrefix("croupier_gateway_requests_total{") && !$0.contains("status=\"OK\"") })
        else { throw LaunchError("the gateway refused benchmark calls:\n\(metricsAfter)") }
        let idleBefore = WireBenchmark.rssKiB(gateway.processIdentifier)
        let fds = try idleConnections(port: gatewayPort, count: 1_000)
        try await Task.sleep(for: .milliseconds(1_000))
        let idleAfter = WireBenchmark.rssKiB(gateway.processIdentifier)
        for fd in fds { close(fd) }

        let report = """
            # croupier bench gateway

            - date: \(ISO8601DateFormatter().string(from: Date()))
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; loopback; h2load, gateway and Wire backend are separate processes on the same cores;
              their event loops poll for \(EventLoopGroup.shared.spinMicros) µs after a busy iteration before sleeping (`CROUPIER_SPIN_MICROS`)
            - call: `bench.Bench/Echo`, 34-byte protobuf message each way; through the gateway: h2load → HTTP/2 (h2c) → gateway → Wire → backend;
              direct: the croupier Wire client → backend, same concurrency (clients × streams calls in flight on as many connections), same run;
              grpc-go: h2load → the anchors' grpc-go server (`/bench.Bench/Unary`, the same body echoed raw, no protobuf), same shapes, same run
            - \(formatRate(Double(total))) measured calls per shape (a quarter at -c 1 -m 1) after a warm-up

            | h2load shape | through the gateway (h2load) | direct over Wire | gateway / direct | h2load → grpc-go 1.33 server |
            | --- | --- | --- | --- | --- |
            \(rows.joined(separator: "\n"))

            The same call in the three framings the gateway speaks, -c 16 -m 8 over h2c, then gRPC-Web and JSON
            over HTTP/1.1 (128 connections, one call at a time each), one after the other in this run
            (the body: the same 34 bytes, or `{"body": "<base64>"}`):

            | framing | through the gateway (h2load) | gateway CPU per call | more than gRPC (for JSON: transcoding both ways, the answer written whole) |
            | --- | --- | --- | --- |
            \(framingRows.joined(separator: "\n"))

            | what | figure |
            | --- | --- |
            | gateway RSS at start / peak under load | \(rssBefore / 1024) MiB / \(peakUnderLoad / 1024) MiB |
            | gateway RSS before / after 1,000 idle HTTP/2 connections | \(idleBefore / 1024) MiB / \(idleAfter / 1024) MiB (\(String(format: "%.1f", Double(idleAfter - idleBefore) / 1_000)) KiB per connection) |

            """
        try record(report, to: outputPath)
        return 0
    }
}
