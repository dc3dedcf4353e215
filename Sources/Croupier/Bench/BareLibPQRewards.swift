import CLibPQ
import Foundation
import Synchronization

/// The reference for `bench loyalty --engine postgres`: a ManualReward's
/// statements sent by a bare libpq client, with no RPC, no store and no
/// Swift concurrency: `threads` threads, each with its own connection and
/// prepared statements, each running one reward transaction after another
/// (the key locks, the idempotency lookup, the staff's rate-limit count, the
/// player's lock and account, the ledger row, the account update).
enum BareLibPQRewards {
    static let statements: [(name: String, sql: String)] = [
        ("locks", "SELECT pg_advisory_xact_lock(1801812339, hashtext($1)), pg_advisory_xact_lock(1801812339, hashtext($2))"),
        ("entry", "SELECT entry_id FROM loyalty_ledger WHERE idempotency_key = $1"),
        ("count", """
            SELECT coalesce(sum(CASE WHEN created_at > $2 THEN 1 ELSE 0 END), 0) FROM loyalty_ledger
            WHERE staff_id = $1 AND created_at > $3
            """),
        ("player", "SELECT pg_advisory_xact_lock(1801812339, hashtext($1))"),
        ("account", "SELECT balance, lifetime_points, tier FROM player_loyalty WHERE player_id = $1"),
        ("ledger", """
            INSERT INTO loyalty_ledger (player_id, transaction_type, points, balance_before, balance_after, tier_before,
                tier_after, lifetime_before, lifetime_after, staff_id, reason, idempotency_key, correlation_id, created_at)
            VALUES ($1, 'MANUAL_BONUS', $2::bigint, $3::bigint, $3::bigint + $2::bigint, 'BRONZE', 'BRONZE', $4::bigint, $4::bigint + $2::bigint, $5, 'Benchmark goodwill reward', $6, '', $7)
            RETURNING entry_id
            """),
        ("save", """
            INSERT INTO player_loyalty (player_id, balance, lifetime_points, tier, updated_at) VALUES ($1, $2::bigint, $2::bigint, 'BRONZE', $3)
            ON CONFLICT (player_id) DO UPDATE SET balance = player_loyalty.balance + $2::bigint,
                lifetime_points = player_loyalty.lifetime_points + $2::bigint, updated_at = $3
            """),
    ]

    /// `calls` rewards on `url` (a database with the loyalty schema) from `threads` connections.
    static func run(url: String, calls: Int, threads: Int) throws -> CallRates {
        let next = Atomic<Int>(0)
        let latencies = Mutex<[Double]>([])
        let failure = Mutex<String?>(nil)
        let start = ContinuousClock.now
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            Thread {
                defer { group.leave() }
                guard let conn = PQconnectdb(url), PQstatus(conn) == CONNECTION_OK else {
                    failure.withLock { $0 = "cannot connect" }
                    return
                }
                defer { PQfinish(conn) }
                for s in statements {
                    let prepared = PQprepare(conn, s.name, s.sql, 0, nil)
                    defer { PQclear(prepared) }
                    guard PQresultStatus(prepared) == PGRES_COMMAND_OK else {
                        failure.withLock { $0 = "preparing \(s.name): \(String(cString: PQerrorMessage(conn)))" }
                        return
                    }
                }
                var mine: [Double] = []
                while case let i = next.add(1, ordering: .relaxed).oldValue, i < calls {
                    let t0 = ContinuousClock.now
                    if let error = reward(conn, i) {
                        failure.withLock { $0 = error }
                        return
                    }
                    mine.append(microseconds(ContinuousClock.now - t0))
                }
                latencies.withLock { $0 += mine }
            }.start()
        }
        group.wait()
        if let error = failure.withLock({ $0 }) { throw LaunchError("bare libpq reference: \(error)") }
        let elapsed = ContinuousClock.now - start
        let sorted = latencies.withLock { $0 }.sorted()
        return CallRates(
            rps: Double(sorted.count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18),
            p50: sorted[sorted.count / 2], p99: sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
    }

    /// One reward transaction, as the store runs it; the error message if a statement failed.
    static func reward(_ conn: OpaquePointer, _ i: Int) -> String? {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let (player, staff, key) = ("player-\(i % 1000)", "staff-\(i / 5)", "bare-\(i)")
        func run(_ name: String, _ values: [String]) -> (ok: Bool, first: [String]) {
            let result = withCStringArray(values) { PQexecPrepared(conn, name, Int32(values.count), $0, nil, nil, 0) }
            defer { PQclear(result) }
            let status = PQresultStatus(result)
            guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { return (false, []) }
            guard PQntuples(result) > 0 else { return (true, []) }
            return (true, (0..<PQnfields(result)).map { String(cString: PQgetvalue(result, 0, $0)) })
        }
        func script(_ sql: String) -> Bool {
            let result = PQexec(conn, sql)
            defer { PQclear(result) }
            return PQresultStatus(result) == PGRES_COMMAND_OK
        }
        guard script("BEGIN ISOLATION LEVEL READ COMMITTED") else { return String(cString: PQerrorMessage(conn)) }
        let steps: [() -> Bool] = [
            { run("locks", ["reward:" + key, "staff:" + staff]).ok },
            { run("entry", [key]).ok },
            { run("count", [staff, String(now - 60_000), String(now - 3_600_000)]).ok },
            { run("player", ["player:" + player]).ok },
        ]
        for step in steps where !step() {
            _ = script("ROLLBACK")
            return String(cString: PQerrorMessage(conn))
        }
        let account = run("account", [player])
        let (balance, lifetime) = (account.first.first ?? "0", account.first.dropFirst().first ?? "0")
        guard run("ledger", [player, "100", balance, lifetime, staff, key, String(now)]).ok,
              run("save", [player, "100", String(now)]).ok, script("COMMIT")
        else {
            let message = String(cString: PQerrorMessage(conn))
            _ = script("ROLLBACK")
            return message
        }
        return nil
    }
}

/// `values` as C strings for the length of `body`.
private func withCStringArray<R>(_ values: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies = values.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    return body(copies.map { UnsafePointer($0) })
}
