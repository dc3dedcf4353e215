import Foundation
import Storage
import Synchronization

/// `croupier up`: every component as its own child process (`croupier serve
/// <component>`), started in order and waited for (READY line), restarted
/// with exponential backoff when one dies (`RestartBackoff`: reset once a
/// child has run long enough), and stopped gracefully — SIGTERM forwarded,
/// SIGKILL after a grace period — on SIGINT/SIGTERM. If a component fails to
/// start, the ones already started are stopped. Children watch their
/// supervisor (`CROUPIER_SUPERVISOR_PID`): if `up` itself is killed, they
/// drain and exit instead of holding their ports as orphans.
enum Supervisor {
    final class Child: @unchecked Sendable {
        // Mutated only by the supervising task.
        let component: String
        /// Which of the component's replicas, and how many there are.
        let replica: Int
        let replicas: Int
        /// Environment of this child alone (a replica's own port, kept across its restarts).
        var own: [String: String] = [:]
        var process: Process?
        var startedAt = ContinuousClock.now
        var backoff = RestartBackoff()
        init(component: String, replica: Int = 0, of replicas: Int = 1, stableMillis: Int64) {
            self.component = component
            self.replica = replica
            self.replicas = replicas
            backoff.stableMillis = stableMillis
        }

        /// "loyalty", or "loyalty-2" for the second of several.
        var label: String { replicas == 1 ? component : "\(component)-\(replica + 1)" }
    }

    static func run(arguments: [String]) async throws -> Int32 {
        let config = try Configuration.load(arguments: arguments)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let passThrough = option("--config", in: arguments).map { ["--config", $0] } ?? []
        say("croupier up: data directory \(config.dataDirectory)")
        let stableMillis = ProcessInfo.processInfo.environment["CROUPIER_RESTART_STABLE_SECONDS"].flatMap(Int64.init).map { $0 * 1000 } ?? 60_000
        // Components listed by address run elsewhere; the others start here, each replica its own process.
        let children = Configuration.components.filter { config.addresses[$0] == nil }.flatMap { c in
            let n = config.replicas[c] ?? 1
            return (0..<n).map { Child(component: c, replica: $0, of: n, stableMillis: stableMillis) }
        }
        // Each child's bound port is handed to the children started after it
        // (and to its own restarts), so port 0 in a config works too.
        var initial = ProcessInfo.processInfo.environment
        initial["CROUPIER_SUPERVISOR_PID"] = String(getpid())
        let environment = Mutex(initial)
        var replicaAddresses: [String: [String]] = [:]
        for child in children {
            // Replicas after the first take free ports; each keeps its port across restarts.
            if child.replicas > 1 {
                child.own["CROUPIER_REPLICA"] = child.label
                // Replicas on one host do not spin-poll their event loops: each carries 1/N of the
                // load, and a spinning loop takes the CPU its siblings and the database need
                // (bench/BENCHMARKS.md, "On PostgreSQL, with replicas"). An explicit setting wins.
                if ProcessInfo.processInfo.environment["CROUPIER_SPIN_MICROS"] == nil { child.own["CROUPIER_SPIN_MICROS"] = "0" }
                child.own["CROUPIER_PG_CONNECTIONS"] = String(Supervisor.replicaConnections(of: child.replicas))
                if child.replica > 0 { child.own["CROUPIER_\(child.component.uppercased())_PORT"] = "0" }
            }
            let env = environment.withLock { $0 }.merging(child.own) { $1 }
            do {
                let address = try await onBlockingThread { try start(child, executable: executable, arguments: passThrough, environment: env) }
                say("  \(child.label) ready on \(address)")
                if child.replicas == 1 {
                    environment.withLock { pin(child.component, address: address, in: &$0) }
                } else {
                    pin(child.component, address: address, in: &child.own)
                    replicaAddresses[child.component, default: []].append(address)
                    if child.replica == child.replicas - 1 {
                        let all = replicaAddresses[child.component, default: []].joined(separator: ",")
                        environment.withLock { $0["CROUPIER_\(child.component.uppercased())_ADDRS"] = all }
                    }
                }
            } catch {
                say("croupier up: \(child.label) failed to start; stopping the components already running")
                await stop(children)
                throw error
            }
        }
        say("croupier up: all components running; Ctrl-C stops them")
        let stopping = Atomic<Bool>(false)
        let supervision = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                for child in children where child.process?.isRunning == false && !stopping.load(ordering: .relaxed) {
                    let status = child.process?.terminationStatus ?? -1
                    let ran = (ContinuousClock.now - child.startedAt).components
                    let backoff = child.backoff.delayAfterExit(ranMillis: ran.seconds * 1000 + ran.attoseconds / 1_000_000_000_000_000)
                    say("  \(child.label) exited (status \(status)); restart \(child.backoff.restarts) in \(backoff) ms")
                    try? await Task.sleep(for: .milliseconds(backoff))
                    let env = environment.withLock { $0 }.merging(child.own) { $1 }
                    if let address = try? await onBlockingThread({
                        try start(child, executable: executable, arguments: passThrough, environment: env)
                    }) {
                        say("  \(child.label) restarted on \(address)")
                    }
                }
            }
        }
        await waitForTerminationSignal()
        stopping.store(true, ordering: .relaxed)
        supervision.cancel()
        say("croupier up: stopping")
        await stop(children)
        say("croupier up: stopped")
        return 0
    }

    /// SIGTERM to every running child (the gateway first), SIGKILL to those
    /// still running after 15 s.
    static func stop(_ children: [Child]) async {
        for child in children.reversed() where child.process?.isRunning == true { child.process?.terminate() }
        let deadline = Date().addingTimeInterval(15)
        for child in children {
            while child.process?.isRunning == true && Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if let p = child.process, p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
    }

    /// Starts a child and waits (up to 15 s) for its READY line; returns its
    /// address. Blocks: call it through `onBlockingThread`.
    static func start(_ child: Child, executable: String, arguments: [String], environment: [String: String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["serve", child.component] + arguments
        p.environment = environment
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        child.process = p
        child.startedAt = .now
        var line = ""
        let deadline = Date().addingTimeInterval(15)
        while !line.contains("\n") && Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += String(decoding: chunk, as: UTF8.self)
        }
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[0] == "READY" else {
            p.terminate()
            p.waitUntilExit()
            throw LaunchError("\(child.component) did not start: \(line.isEmpty ? "no output" : line)")
        }
        return String(parts[2]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Records a started component's address in the children's environment.
    static func pin(_ component: String, address: String, in env: inout [String: String]) {
        if component == "gateway" {
            env["CROUPIER_GATEWAY_ADDR"] = address
        } else if let port = address.split(separator: ":").last {
            env["CROUPIER_\(component.uppercased())_PORT"] = String(port)
        }
    }

    /// Each replica's share of its component's database connections (`Database.Options.connections`, at least 4).
    static func replicaConnections(of replicas: Int) -> Int {
        max(4, Database.Options().connections / max(1, replicas))
    }

    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
