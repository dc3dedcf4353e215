import Synchronization
import Wire

/// The backends' own figures for the gateway's /metrics: each backend
/// process is asked over Wire (`croupier.ops.v1.Metrics/Scrape`, at most
/// `timeout`, all at once) and its text follows the gateway's, with one
/// `croupier_service_scrape_up` sample per backend saying whether it
/// answered. A backend that exports nothing (UNIMPLEMENTED) is left out.
/// With replicas, each scrape reaches one of them: figures read from the
/// shared database agree across replicas, per-process counters do not.
///
/// One scrape serves every /metrics request for `maxAge`: a client asking
/// for /metrics in a loop cannot make the gateway fan out more than one
/// round of backend calls per second.
final class ServiceMetrics: Sendable {
    let targets: [(name: String, channel: any RPCChannel)]
    let timeout: Duration
    let maxAge: Duration
    private let latest = Mutex<(started: ContinuousClock.Instant, scrape: Task<String, Never>)?>(nil)

    init(targets: [(name: String, channel: any RPCChannel)], timeout: Duration = .seconds(1), maxAge: Duration = .seconds(1)) {
        self.targets = targets
        self.timeout = timeout
        self.maxAge = maxAge
    }

    /// The backends' text: from a scrape started within `maxAge` (finished or not), else a new one.
    func current() async -> String {
        let scrape = latest.withLock { latest -> Task<String, Never> in
            if let l = latest, ContinuousClock.now - l.started < maxAge { return l.scrape }
            let task = Task { await self.scrape() }
            latest = (.now, task)
            return task
        }
        return await scrape.value
    }

    private func scrape() async -> String {
        let (targets, timeout) = (self.targets, self.timeout)
        let answers = await withTaskGroup(of: (Int, Result<String, RPCError>).self) { group in
            for (i, target) in targets.enumerated() {
                group.addTask {
                    do {
                        let reply = try await Croupier_Ops_V1_Metrics.Client(channel: target.channel).scrape(
                            Croupier_Ops_V1_ScrapeRequest(), options: CallOptions(deadline: .now + timeout))
                        return (i, .success(reply.text))
                    } catch {
                        return (i, .failure(.from(error)))
                    }
                }
            }
            var all: [(Int, Result<String, RPCError>)] = []
            for await a in group { all.append(a) }
            return all.sorted { $0.0 < $1.0 }
        }
        var out = PrometheusText()
        out.metric("croupier_service_scrape_up", .gauge, "Whether the backend answered the gateway's scrape of its metrics (1) or not (0).")
        var texts = ""
        for (i, result) in answers {
            switch result {
            case .success(let text):
                out.sample("croupier_service_scrape_up", [("service", targets[i].name)], 1)
                texts += text
            case .failure(let e) where e.code == .unimplemented:
                continue
            case .failure:
                out.sample("croupier_service_scrape_up", [("service", targets[i].name)], 0)
            }
        }
        return out.text + texts
    }
}
