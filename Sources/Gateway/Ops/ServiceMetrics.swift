import Synchronization
import Wire

/// The backends' own figures for the gateway's /metrics: every replica of
/// every backend is asked over Wire (`croupier.ops.v1.Metrics/Scrape`, at
/// most `timeout`, all at once). Their texts are merged family by family:
/// - a process's own figures with each sample labelled with its `replica`
///   (the address it was scraped from), so per-process counters of two
///   replicas are two series, not one that jumps between them;
/// - figures read from a service's database (the same in every replica)
///   once per service, from the first replica that answered, unlabelled, so
///   a sum over them counts each queued message once.
/// One `croupier_service_scrape_up{service,replica}` says whether each
/// replica answered. A backend that exports nothing (UNIMPLEMENTED) is left out.
///
/// One scrape serves every /metrics request for `maxAge`: a client asking
/// for /metrics in a loop cannot make the gateway fan out more than one
/// round of backend calls per second.
final class ServiceMetrics: Sendable {
    struct Replica: Sendable {
        let service: String
        let address: String
        let channel: any RPCChannel
    }

    let replicas: [Replica]
    let timeout: Duration
    let maxAge: Duration
    private let latest = Mutex<(started: ContinuousClock.Instant, scrape: Task<String, Never>)?>(nil)

    init(replicas: [Replica], timeout: Duration = .seconds(1), maxAge: Duration = .seconds(1)) {
        self.replicas = replicas
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
        let (replicas, timeout) = (self.replicas, self.timeout)
        let answers = await withTaskGroup(of: (Int, Result<Croupier_Ops_V1_ScrapeResponse, RPCError>).self) { group in
            for (i, r) in replicas.enumerated() {
                group.addTask {
                    do {
                        let reply = try await Croupier_Ops_V1_Metrics.Client(channel: r.channel).scrape(
                            Croupier_Ops_V1_ScrapeRequest(), options: CallOptions(deadline: .now + timeout))
                        return (i, .success(reply))
                    } catch {
                        return (i, .failure(.from(error)))
                    }
                }
            }
            var all: [(Int, Result<Croupier_Ops_V1_ScrapeResponse, RPCError>)] = []
            for await a in group { all.append(a) }
            return all.sorted { $0.0 < $1.0 }
        }
        var out = PrometheusText()
        out.metric("croupier_service_scrape_up", .gauge, "Whether a backend replica answered the gateway's scrape of its metrics (1) or not (0).")
        var texts: [(replica: String?, text: String)] = []
        var databaseRead: Set<String> = []  // services whose database figures are in
        for (i, result) in answers {
            let r = replicas[i]
            switch result {
            case .success(let reply):
                out.sample("croupier_service_scrape_up", [("service", r.service), ("replica", r.address)], 1)
                texts.append((r.address, reply.text))
                if databaseRead.insert(r.service).inserted { texts.append((nil, reply.databaseText)) }
            case .failure(let e) where e.code == .unimplemented:
                continue
            case .failure:
                out.sample("croupier_service_scrape_up", [("service", r.service), ("replica", r.address)], 0)
            }
        }
        return out.text + Self.merge(texts)
    }

    /// Texts in the exposition format merged into one: each family's HELP
    /// and TYPE once (where it first appears), then its samples from every
    /// text, each with `replica="…"` added to its labels when the text has one.
    static func merge(_ texts: [(replica: String?, text: String)]) -> String {
        var order: [String] = []
        var owner: [String: Int] = [:]  // the text whose HELP and TYPE lines a family keeps
        var headers: [String: [Substring]] = [:]
        var samples: [String: [String]] = [:]
        for (index, (replica, text)) in texts.enumerated() {
            let label = replica.map { "replica=\"\(PrometheusText.escape($0))\"" }
            var family = ""
            func enter(_ name: String) {
                family = name
                if owner[name] == nil {
                    owner[name] = index
                    order.append(name)
                }
            }
            for line in text.split(separator: "\n") {
                if line.hasPrefix("# ") {
                    let words = line.split(separator: " ", maxSplits: 3)
                    guard words.count >= 3 else { continue }
                    enter(String(words[2]))
                    if owner[family] == index { headers[family, default: []].append(line) }
                    continue
                }
                guard let space = line.lastIndex(of: " ") else { continue }
                let series = line[..<space]
                if family.isEmpty { enter(String(series.prefix { $0 != "{" })) }
                let labelled: String
                if let label, series.hasSuffix("}"), let open = series.firstIndex(of: "{") {
                    let inner = series[series.index(after: open)..<series.index(before: series.endIndex)]
                    labelled = "\(series[..<open]){\(inner.isEmpty ? "" : inner + ",")\(label)}"
                } else if let label {
                    labelled = "\(series){\(label)}"
                } else {
                    labelled = String(series)
                }
                samples[family, default: []].append(labelled + line[space...])
            }
        }
        return order.map { f in (headers[f] ?? []).map { $0 + "\n" }.joined() + (samples[f] ?? []).map { $0 + "\n" }.joined() }.joined()
    }
}
