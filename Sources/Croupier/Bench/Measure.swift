import Foundation
import Wire

/// Operations per second of `body`, best of `runs` runs lasting at least
/// `seconds` each. `body` returns a value folded into a checksum so the
/// optimizer cannot drop the work.
func operationsPerSecond(seconds: Double, runs: Int = 3, _ body: () throws -> Int) rethrows -> Double {
    var best = 0.0
    var checksum = 0
    for _ in 0..<runs {
        var n = 0
        var batch = 16
        let clock = ContinuousClock()
        let start = clock.now
        var elapsed = 0.0
        repeat {
            for _ in 0..<batch { checksum &+= try body() }
            n += batch
            let d = clock.now - start
            elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            batch = min(batch * 2, 1 << 16)
        } while elapsed < seconds
        best = max(best, Double(n) / elapsed)
    }
    if checksum == 42 { print("") }  // keeps `checksum` alive
    return best
}

/// Formats a rate with thousands separators, e.g. `1,234,567`.
func formatRate(_ value: Double) -> String {
    let digits = String(Int(value.rounded()))
    var out = ""
    for (i, ch) in digits.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return String(out.reversed())
}

import Synchronization

/// Throughput and latency of a run of calls (latencies in µs).
struct CallRates {
    let rps: Double
    let p50: Double
    let p99: Double

    init(rps: Double, p50: Double, p99: Double) {
        (self.rps, self.p50, self.p99) = (rps, p50, p99)
    }

    /// `calls` calls made since `start`, from their latencies (µs, any order).
    init(calls: Int, since start: ContinuousClock.Instant, latencies: [Double]) {
        let sorted = latencies.sorted()
        self.init(
            rps: Double(calls) / (microseconds(ContinuousClock.now - start) / 1e6),
            p50: sorted[sorted.count / 2], p99: sorted[sorted.count * 99 / 100])
    }
}

/// Makes calls `0..<total` with `inflight` of them outstanding at once (each
/// task preferring `executor`); returns calls/s and latency percentiles.
func measureCalls(
    inflight: Int, total: Int, executor: (any TaskExecutor)? = nil, _ call: @escaping @Sendable (Int) async throws -> Void
) async throws -> CallRates {
    try await measureCallers(inflight: inflight, total: total, executor: executor) { turns in
        var latencies: [Double] = []
        while let i = turns.next() {
            let t0 = ContinuousClock.now
            try await call(i)
            latencies.append(microseconds(ContinuousClock.now - t0))
        }
        return latencies
    }
}

/// The calls `0..<total`, handed out one at a time to the callers.
struct Turns: Sendable {
    let counter = SharedCounter()
    let total: Int

    /// The next call's number, or nil when all are taken.
    func next() -> Int? {
        let i = counter.value.add(1, ordering: .relaxed).oldValue
        return i < total ? i : nil
    }
}

/// `inflight` caller tasks (each preferring `executor`), each running
/// `caller`: it makes calls while `turns` hands them out and returns their
/// latencies (µs). For callers that make the call in their own loop: a call
/// through a closure (`measureCalls`) costs each call one more executor switch.
func measureCallers(
    inflight: Int, total: Int, executor: (any TaskExecutor)? = nil, _ caller: @escaping @Sendable (Turns) async throws -> [Double]
) async throws -> CallRates {
    let turns = Turns(total: total)
    let start = ContinuousClock.now
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for _ in 0..<inflight {
            group.addTask(executorPreference: executor) { try await caller(turns) }
        }
        return try await group.reduce(into: []) { $0 += $1 }
    }
    return CallRates(calls: total, since: start, latencies: latencies)
}

func microseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
}

/// µs since `start`, a reading of `LoopClock.now`:
/// cheaper per call than `ContinuousClock` arithmetic, as `echo.c` times its calls.
func microseconds(sinceNanos start: Int64) -> Double { Double(LoopClock.now() - start) / 1000 }

/// A counter shared by benchmark tasks.
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// Prints a benchmark's report and records it at `path` (under bench/results/).
func record(_ report: String, to path: String) throws {
    print(report)
    try FileManager.default.createDirectory(
        at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
    try report.write(toFile: path, atomically: true, encoding: .utf8)
    print("recorded in \(path)")
}

/// `croupier serve <component>` as a child process, ready: its process and Wire port.
func serveComponent(_ component: String, environment: [String: String], arguments: [String] = []) throws -> (Process, UInt16) {
    let (p, line) = try WireBenchmark.spawn(
        CommandLine.arguments[0], ["serve", component] + arguments, ready: "READY \(component)", environment: environment, quiet: true)
    guard let port = line.split(separator: ":").last.flatMap({ UInt16($0) }) else {
        p.terminate()
        throw LaunchError("\(component) printed no port: \(line)")
    }
    return (p, port)
}

extension Process {
    /// Starts the process so that `terminate()` (SIGTERM) or Ctrl-C ends it.
    /// A child starts with the signal mask of the thread that spawns it, and
    /// an async program's main thread blocks SIGTERM and SIGINT (libdispatch
    /// takes them through a signalfd). A benchmark's reference servers
    /// (`echo.c`, the grpc-go peer) started from there ignored `terminate()`
    /// and outlived every run.
    func runStoppable() throws {
        var stop = sigset_t(), previous = sigset_t()
        sigemptyset(&stop)
        sigaddset(&stop, SIGTERM)
        sigaddset(&stop, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &stop, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try run()
    }
}

