import Synchronization

/// How long a kind of job took, as a Prometheus histogram: cumulative
/// counts per upper bound, a count and a sum, since the process started.
/// Safe from any thread.
public final class DurationHistogram: Sendable {
    /// Upper bounds in seconds: from a fast diff to a long import.
    public static let jobBuckets: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

    private struct State {
        var buckets: [Int]
        var count = 0
        var sum = 0.0
    }

    public let bounds: [Double]
    private let state: Mutex<State>

    public init(bounds: [Double] = DurationHistogram.jobBuckets) {
        self.bounds = bounds
        state = Mutex(State(buckets: [Int](repeating: 0, count: bounds.count)))
    }

    public func observe(seconds: Double) {
        state.withLock { s in
            s.count += 1
            s.sum += seconds
            for (i, le) in bounds.enumerated() where seconds <= le { s.buckets[i] += 1 }
        }
    }

    public func observe(since start: ContinuousClock.Instant) {
        let d = (ContinuousClock.now - start).components
        observe(seconds: Double(d.seconds) + Double(d.attoseconds) / 1e18)
    }

    /// Its HELP, TYPE and samples under `name`.
    public func render(into out: inout PrometheusText, _ name: String, _ help: String) {
        let s = state.withLock { $0 }
        out.metric(name, .histogram, help)
        for (i, le) in bounds.enumerated() { out.sample(name + "_bucket", [("le", PrometheusText.format(le))], Double(s.buckets[i])) }
        out.sample(name + "_bucket", [("le", "+Inf")], Double(s.count))
        out.sample(name + "_sum", [], s.sum)
        out.sample(name + "_count", [], Double(s.count))
    }
}
