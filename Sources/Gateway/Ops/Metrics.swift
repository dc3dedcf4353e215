import Foundation
import Synchronization
import Wire

/// The gateway's counters, in Prometheus text format at `GET /metrics`.
///
/// Cardinality is bounded: a method label is a method the router knows (a
/// call to any other path counts under `unknown`), so clients cannot mint
/// series; label values are escaped as the text format requires.
final class Metrics: Sendable {
    /// The label of every path the router does not know.
    static let unknownMethod = "unknown"
    private let knownMethods: Set<String>
    private let bufferedBytes: @Sendable () -> Int

    init(knownMethods: Set<String> = [], bufferedBytes: @escaping @Sendable () -> Int = { 0 }) {
        self.knownMethods = knownMethods
        self.bufferedBytes = bufferedBytes
    }

    /// The label for `path`: itself if known, else `unknown`.
    func methodLabel(_ path: String) -> String { knownMethods.contains(path) ? path : Self.unknownMethod }

    static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct PerMethod {
        var byStatus: [StatusCode: Int] = [:]
        var buckets = [Int](repeating: 0, count: Metrics.latencyBuckets.count)
        var count = 0
        var sum = 0.0

        mutating func record(_ status: StatusCode, seconds: Double) {
            byStatus[status, default: 0] += 1
            count += 1
            sum += seconds
            for (i, le) in Metrics.latencyBuckets.enumerated() where seconds <= le { buckets[i] += 1 }
        }
    }

    private struct State {
        var methods: [String: PerMethod] = [:]
        var rateLimited: [String: Int] = [:]
        var authFailures: [String: Int] = [:]
        var connections = 0
    }

    private let state = Mutex(State())
    private let inFlight = Atomic<Int>(0)

    func callStarted() { inFlight.add(1, ordering: .relaxed) }

    func callEnded(method: String, status: StatusCode, seconds: Double) {
        inFlight.subtract(1, ordering: .relaxed)
        // Counted in place: copying the method's record out and back would
        // copy its dictionary and buckets on every call.
        let label = methodLabel(method)
        state.withLock { s in s.methods[label, default: PerMethod()].record(status, seconds: seconds) }
    }

    func rateLimited(method: String) {
        let label = methodLabel(method)
        state.withLock { $0.rateLimited[label, default: 0] += 1 }
    }
    func authFailed(reason: String) { state.withLock { $0.authFailures[reason, default: 0] += 1 } }
    func connectionOpened() { state.withLock { $0.connections += 1 } }
    func connectionClosed() { state.withLock { $0.connections -= 1 } }

    func render() -> String {
        let s = state.withLock { $0 }
        var out = ""
        out += "# HELP croupier_gateway_requests_total gRPC calls by method and status.\n"
        out += "# TYPE croupier_gateway_requests_total counter\n"
        for (label, m) in s.methods.sorted(by: { $0.key < $1.key }) {
            let method = PrometheusText.escape(label)
            for (code, n) in m.byStatus.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                out += "croupier_gateway_requests_total{method=\"\(method)\",status=\"\(code.name)\"} \(n)\n"
            }
        }
        out += "# HELP croupier_gateway_request_duration_seconds Call latency at the gateway.\n"
        out += "# TYPE croupier_gateway_request_duration_seconds histogram\n"
        for (label, m) in s.methods.sorted(by: { $0.key < $1.key }) {
            let method = PrometheusText.escape(label)
            for (i, le) in Self.latencyBuckets.enumerated() {
                out += "croupier_gateway_request_duration_seconds_bucket{method=\"\(method)\",le=\"\(le)\"} \(m.buckets[i])\n"
            }
            out += "croupier_gateway_request_duration_seconds_bucket{method=\"\(method)\",le=\"+Inf\"} \(m.count)\n"
            out += "croupier_gateway_request_duration_seconds_sum{method=\"\(method)\"} \(String(format: "%.6f", m.sum))\n"
            out += "croupier_gateway_request_duration_seconds_count{method=\"\(method)\"} \(m.count)\n"
        }
        out += "# HELP croupier_gateway_in_flight Calls in progress.\n# TYPE croupier_gateway_in_flight gauge\n"
        out += "croupier_gateway_in_flight \(inFlight.load(ordering: .relaxed))\n"
        out += "# HELP croupier_gateway_streams HTTP/2 streams held in memory (this request's included).\n"
        out += "# TYPE croupier_gateway_streams gauge\n"
        out += "croupier_gateway_streams \(CallStream.alive.load(ordering: .relaxed))\n"
        out += "# HELP croupier_gateway_connections Open HTTP/2 connections.\n# TYPE croupier_gateway_connections gauge\n"
        out += "croupier_gateway_connections \(s.connections)\n"
        out += "# HELP croupier_gateway_buffered_bytes Bytes taken from the buffer budget for clients (per connection, in 16 KiB chunks).\n"
        out += "# TYPE croupier_gateway_buffered_bytes gauge\n"
        out += "croupier_gateway_buffered_bytes \(bufferedBytes())\n"
        out += "# HELP croupier_gateway_rate_limited_total Calls refused by a rate limit.\n"
        out += "# TYPE croupier_gateway_rate_limited_total counter\n"
        for (method, n) in s.rateLimited.sorted(by: { $0.key < $1.key }) {
            out += "croupier_gateway_rate_limited_total{method=\"\(PrometheusText.escape(method))\"} \(n)\n"
        }
        out += "# HELP croupier_gateway_auth_failures_total Calls refused by authentication or permission checks.\n"
        out += "# TYPE croupier_gateway_auth_failures_total counter\n"
        for (reason, n) in s.authFailures.sorted(by: { $0.key < $1.key }) {
            out += "croupier_gateway_auth_failures_total{reason=\"\(PrometheusText.escape(reason))\"} \(n)\n"
        }
        return out
    }
}
