import Storage
import XCTest

/// Random operations against a real queue, checking after each step the
/// rules a FIFO queue promises, and at the end that nothing was lost or
/// duplicated.
final class QueueInvariantTests: XCTestCase {
    func testRandomOperationsKeepFIFOInvariants() async throws {
        let clock = ManualClock()
        let db = try openTestDatabase(try temporaryDatabasePath())
        var config = QueueConfiguration(name: "model")
        config.visibilityTimeoutMillis = 10_000
        let queue = DurableQueue(database: db, configuration: config, clock: clock)
        var rng = SystemRandomNumberGenerator()
        var sent: [String: [String]] = [:]  // group → bodies in send order
        var held: [ReceivedMessage] = []
        var heldSince: [Int64: Int64] = [:]
        var lastDeliveredID: [String: Int64] = [:]
        var acknowledged: [String] = []
        var counter = 0

        for step in 0..<1_500 {
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<35:
                let group = "g\(Int.random(in: 0..<4, using: &rng))"
                counter += 1
                try await queue.send(group: group, body: Array("m\(counter)".utf8))
                sent[group, default: []].append("m\(counter)")
            case 35..<65:
                let now = clock.nowMillis()
                let got = try await queue.receive(max: Int.random(in: 1...3, using: &rng))
                // Only messages whose visibility is still running count as out.
                let live = held.filter { now - heldSince[$0.id]! < config.visibilityTimeoutMillis }
                for m in got {
                    XCTAssertFalse(live.contains { $0.groupID == m.groupID }, "step \(step): two messages of \(m.groupID) out at once")
                    XCTAssertGreaterThanOrEqual(m.id, lastDeliveredID[m.groupID] ?? 0, "step \(step): \(m.groupID) delivered out of order")
                    lastDeliveredID[m.groupID] = m.id
                    heldSince[m.id] = now
                }
                XCTAssertEqual(Set(got.map(\.groupID)).count, got.count, "one message per group per receive")
                held.removeAll { h in got.contains { $0.id == h.id } }
                held += got
            case 65..<85:
                guard !held.isEmpty else { continue }
                let m = held.remove(at: Int.random(in: 0..<held.count, using: &rng))
                do {
                    try await queue.delete(m)
                    acknowledged.append(String(decoding: m.body, as: UTF8.self))
                } catch QueueError.receiptInvalid {}  // expired and received again, or dead-lettered
            case 85..<97:
                clock.advance(millis: Int64.random(in: 0...12_000, using: &rng))
            default:
                try await queue.redrive()
            }
        }

        // Drain: everything not acknowledged is still there, exactly once.
        clock.advance(millis: 60_000)
        for _ in 0..<200 {
            try await queue.redrive()
            let got = try await queue.receive(max: 10)
            let dead = try await queue.stats().deadLetters
            if got.isEmpty && dead == 0 { break }
            for m in got {
                try await queue.delete(m)
                acknowledged.append(String(decoding: m.body, as: UTF8.self))
            }
        }
        let allSent = sent.values.flatMap { $0 }
        XCTAssertEqual(acknowledged.count, allSent.count, "every message acknowledged exactly once")
        XCTAssertEqual(Set(acknowledged), Set(allSent))
        let final = try await queue.stats()
        XCTAssertEqual(final, QueueStats(depth: 0, inFlight: 0, oldestAgeMillis: 0, deadLetters: 0))
    }
}
