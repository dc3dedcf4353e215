import Storage
import XCTest

final class DurableQueueTests: XCTestCase {
    var clock: ManualClock!
    var db: Database!
    var queue: DurableQueue!

    override func setUp() async throws {
        clock = ManualClock()
        db = try openTestDatabase(try temporaryDatabasePath())
        var config = QueueConfiguration(name: "diffs")
        config.visibilityTimeoutMillis = 30_000
        queue = DurableQueue(database: db, configuration: config, clock: clock)
    }

    private func body(_ s: String) -> [UInt8] { Array(s.utf8) }
    private func text(_ m: ReceivedMessage) -> String { String(decoding: m.body, as: UTF8.self) }

    func testGroupDeliversInOrderOneAtATime() async throws {
        for i in 1...3 { try await queue.send(group: "game-a", body: body("a\(i)")) }
        var first = try await queue.receive(max: 10)
        XCTAssertEqual(first.map(text), ["a1"], "only the group's head may be in flight")
        let v1 = try await queue.receive(max: 10)
        XCTAssertEqual(v1, [], "the group is blocked while its head is in flight")
        try await queue.delete(first[0])
        first = try await queue.receive(max: 10)
        XCTAssertEqual(first.map(text), ["a2"])
        try await queue.delete(first[0])
        let v2 = try await queue.receive(max: 10).map(text)
        XCTAssertEqual(v2, ["a3"])
    }

    func testDifferentGroupsAreDeliveredTogether() async throws {
        for g in ["a", "b", "c"] { for i in 1...2 { try await queue.send(group: g, body: body("\(g)\(i)")) } }
        let batch = try await queue.receive(max: 10)
        XCTAssertEqual(batch.map(text), ["a1", "b1", "c1"])
        let v3 = try await queue.receive(max: 2).count
        XCTAssertEqual(v3, 0)
    }

    func testContentBasedDeduplicationInsideAndOutsideTheWindow() async throws {
        let first = try await queue.send(group: "g", body: body("same"))
        let again = try await queue.send(group: "g", body: body("same"))
        XCTAssertEqual(again, SendResult(messageID: first.messageID, duplicate: true))
        clock.advance(millis: 5 * 60 * 1000 + 1)
        let later = try await queue.send(group: "g", body: body("same"))
        XCTAssertFalse(later.duplicate)
        XCTAssertNotEqual(later.messageID, first.messageID)
        let v4 = try await queue.stats().depth
        XCTAssertEqual(v4, 2)
    }

    func testExplicitDeduplicationID() async throws {
        let a = try await queue.send(group: "g", body: body("one"), deduplicationID: "run-1")
        let b = try await queue.send(group: "g", body: body("two"), deduplicationID: "run-1")
        XCTAssertTrue(b.duplicate)
        XCTAssertEqual(b.messageID, a.messageID)
        let v5 = try await queue.send(group: "g", body: body("one"), deduplicationID: "run-2").duplicate
        XCTAssertFalse(v5)
    }

    /// `.whilePending` collapses a repeat only into a message not yet
    /// delivered: once the first is in flight, done or dead, asking again
    /// enqueues anew. `.window` (the default) collapses regardless.
    func testDeduplicationWhilePendingOnly() async throws {
        let first = try await queue.send(group: "g", body: body("again"), scope: .whilePending)
        let pending = try await queue.send(group: "g", body: body("again"), scope: .whilePending)
        XCTAssertEqual(pending, SendResult(messageID: first.messageID, duplicate: true))
        let taken = try await queue.receive(max: 1)[0]
        let whileInFlight = try await queue.send(group: "g", body: body("again"), scope: .whilePending)
        XCTAssertFalse(whileInFlight.duplicate, "the first is being handled: a new request")
        let windowed = try await queue.send(group: "g", body: body("again"))
        XCTAssertTrue(windowed.duplicate, "the window scope still collapses it")
        try await queue.delete(taken)
        let afterDone = try await queue.send(group: "g", body: body("again"), scope: .whilePending)
        XCTAssertTrue(afterDone.duplicate, "the second request is still waiting: it absorbs the third")
        XCTAssertEqual(afterDone.messageID, whileInFlight.messageID)
    }

    /// A postponed message (its handler found a lock busy) gives its receive
    /// back: postponing forever never dead-letters it, and it comes back
    /// after the delay.
    func testPostponingNeverUsesUpReceives() async throws {
        try await queue.send(group: "g", body: body("waits"))
        for _ in 0..<10 {
            let m = try await queue.receive(max: 1)[0]
            XCTAssertEqual(m.receiveCount, 1)
            try await queue.postpone(m, delayMillis: 1_000)
            let hidden = try await queue.receive(max: 1)
            XCTAssertEqual(hidden, [], "hidden for the delay")
            clock.advance(millis: 1_000)
        }
        let stats = try await queue.stats()
        XCTAssertEqual(stats.deadLetters, 0)
        XCTAssertEqual(stats.depth, 1)
    }

    /// An operator releases an in-flight message: deliverable at once, and the
    /// old consumer's receipt is void.
    func testReleasingAnInFlightMessage() async throws {
        try await queue.send(group: "g", body: body("stuck"))
        let m = try await queue.receive(max: 1)[0]
        let listed = try await queue.messages()
        XCTAssertEqual(listed.map(\.inFlight), [true])
        let released = try await queue.release(messageID: m.id)
        XCTAssertTrue(released)
        let alreadyFree = try await queue.release(messageID: m.id)
        XCTAssertFalse(alreadyFree, "not in flight any more")
        let again = try await queue.receive(max: 1)[0]
        XCTAssertEqual(again.id, m.id)
        XCTAssertEqual(again.receiveCount, 2)
        do {
            try await queue.delete(m)
            XCTFail("expected receiptInvalid")
        } catch let error as QueueError {
            XCTAssertEqual(error, .receiptInvalid(messageID: m.id))
        }
        try await queue.delete(again)
    }

    func testUnackedMessageReappearsAfterVisibilityTimeout() async throws {
        try await queue.send(group: "g", body: body("job"))
        let first = try await queue.receive(max: 1)[0]
        clock.advance(millis: 29_999)
        let v6 = try await queue.receive(max: 1)
        XCTAssertEqual(v6, [])
        clock.advance(millis: 2)
        let second = try await queue.receive(max: 1)[0]
        XCTAssertEqual(second.id, first.id)
        XCTAssertEqual(second.receiveCount, 2)
        // The first receipt died with the redelivery.
        do {
            try await queue.delete(first)
            XCTFail("expected receiptInvalid")
        } catch let error as QueueError {
            XCTAssertEqual(error, .receiptInvalid(messageID: first.id))
        }
        try await queue.delete(second)
        let v7 = try await queue.stats()
        XCTAssertEqual(v7, QueueStats(depth: 0, inFlight: 0, oldestAgeMillis: 0, deadLetters: 0))
    }

    func testHeartbeatExtendsVisibility() async throws {
        try await queue.send(group: "g", body: body("long"))
        let m = try await queue.receive(max: 1)[0]
        clock.advance(millis: 25_000)
        try await queue.changeVisibility(m, timeoutMillis: 30_000)
        clock.advance(millis: 25_000)
        let v8 = try await queue.receive(max: 1)
        XCTAssertEqual(v8, [], "extended: still hidden 50 s after receive")
        clock.advance(millis: 5_001)
        let v9 = try await queue.receive(max: 1).first?.id
        XCTAssertEqual(v9, m.id)
    }

    func testDeadLetterAfterMaxReceivesThenRedrive() async throws {
        try await queue.send(group: "g", body: body("poison"))
        try await queue.send(group: "g", body: body("next"))
        for attempt in 1...3 {
            let m = try await queue.receive(max: 1)
            XCTAssertEqual(m.map(text), ["poison"])
            XCTAssertEqual(m.first?.receiveCount, attempt)
            clock.advance(millis: 30_001)
        }
        // Fourth attempt: poison goes to the DLQ and the group moves on.
        let m = try await queue.receive(max: 1)
        XCTAssertEqual(m.map(text), ["next"])
        let dead = try await queue.deadLetters()
        XCTAssertEqual(dead.map { String(decoding: $0.body, as: UTF8.self) }, ["poison"])
        XCTAssertEqual(dead.first?.receiveCount, 3)
        let v10 = try await queue.stats().deadLetters
        XCTAssertEqual(v10, 1)

        try await queue.delete(m[0])
        let v11 = try await queue.redrive()
        XCTAssertEqual(v11, 1)
        let again = try await queue.receive(max: 1)
        XCTAssertEqual(again.map(text), ["poison"])
        XCTAssertEqual(again.first?.receiveCount, 1, "redrive resets the receive count")
        let v12 = try await queue.stats().deadLetters
        XCTAssertEqual(v12, 0)
    }

    /// A message is delivered with its origin (trace header and correlation
    /// id), on every delivery and after a redrive; the origin is no part of
    /// de-duplication (the same body sent by another request is the same message).
    func testTheOriginTravelsWithTheMessage() async throws {
        let traced = MessageOrigin(traceHeader: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", correlationID: "corr-1")
        let sent = try await queue.send(group: "g", body: body("traced"), origin: traced)
        let again = try await queue.send(group: "g", body: body("traced"), origin: MessageOrigin(
            traceHeader: "00-" + String(repeating: "1", count: 32) + "-00f067aa0ba902b7-01", correlationID: "corr-2"))
        XCTAssertEqual(again, SendResult(messageID: sent.messageID, duplicate: true))
        try await queue.send(group: "h", body: body("untraced"))
        var got = try await queue.receive(max: 10)
        XCTAssertEqual(got.map(text), ["traced", "untraced"])
        XCTAssertEqual(got.map(\.origin), [traced, MessageOrigin()])
        try await queue.delete(got[1])
        for _ in 1...2 {
            clock.advance(millis: 30_001)
            got = try await queue.receive(max: 1)
            XCTAssertEqual(got.first?.origin, traced, "a redelivery keeps the origin")
        }
        clock.advance(millis: 30_001)
        let none = try await queue.receive(max: 1)
        XCTAssertEqual(none, [], "dead-lettered after 3 receives")
        let moved = try await queue.redrive()
        XCTAssertEqual(moved, 1)
        got = try await queue.receive(max: 1)
        XCTAssertEqual(got.map(\.origin), [traced], "a redriven message keeps its origin")
    }

    /// A redriven message is sent again at the end of its group: the group's
    /// in-flight message stays the only one out.
    func testRedriveRespectsTheGroupsInFlightMessage() async throws {
        try await queue.send(group: "g", body: body("first"))
        for _ in 1...3 {
            _ = try await queue.receive(max: 1)
            clock.advance(millis: 30_001)
        }
        try await queue.send(group: "g", body: body("second"))
        try await queue.send(group: "g", body: body("third"))
        let second = try await queue.receive(max: 1)  // "first" dies here; "second" is delivered
        XCTAssertEqual(second.map(text), ["second"])
        try await queue.redrive()
        let blocked = try await queue.receive(max: 5)
        XCTAssertEqual(blocked, [], "\"second\" is still in flight, so its group is blocked")
        try await queue.delete(second[0])
        var next = try await queue.receive(max: 5)
        XCTAssertEqual(next.map(text), ["third"])
        try await queue.delete(next[0])
        next = try await queue.receive(max: 5)
        XCTAssertEqual(next.map(text), ["first"], "the redriven message comes after the messages sent before its redrive")
        XCTAssertEqual(next.first?.receiveCount, 1)
    }

    func testRetentionDropsOldMessages() async throws {
        try await queue.send(group: "g", body: body("old"))
        clock.advance(millis: 23 * 60 * 60 * 1000)
        try await queue.send(group: "h", body: body("young"))
        clock.advance(millis: 60 * 60 * 1000 + 1)
        let v13 = try await queue.receive(max: 10).map(text)
        XCTAssertEqual(v13, ["young"])
    }

    func testLimitsAreEnforcedWithClearErrors() async throws {
        do {
            try await queue.send(group: "g", body: [UInt8](repeating: 0, count: 4097))
            XCTFail("expected messageTooLarge")
        } catch let error as QueueError {
            XCTAssertEqual(error, .messageTooLarge(size: 4097, max: 4096))
        }
        do {
            try await queue.send(group: "", body: body("x"))
            XCTFail("expected emptyGroupID")
        } catch let error as QueueError {
            XCTAssertEqual(error, .emptyGroupID)
        }
        _ = try await queue.send(group: "g", body: [UInt8](repeating: 0, count: 4096))
    }

    func testStatsReportDepthInFlightAndAge() async throws {
        try await queue.send(group: "a", body: body("1"))
        try await queue.send(group: "a", body: body("2"))
        try await queue.send(group: "b", body: body("3"))
        clock.advance(millis: 1_500)
        _ = try await queue.receive(max: 1)
        let v15 = try await queue.stats()
        XCTAssertEqual(v15, QueueStats(depth: 2, inFlight: 1, oldestAgeMillis: 1_500, deadLetters: 0))
    }

    /// A paused queue delivers nothing, to this process or another on the
    /// same database (a replica, the next process after a restart), while
    /// sends go on and a message already in flight finishes; resumed, it
    /// delivers in order. A second pause keeps the first one's time and author.
    func testAPausedQueueDeliversNothingUntilResumed() async throws {
        try await queue.send(group: "g", body: body("one"))
        let inFlight = try await queue.receive(max: 1)
        let pausedAt = clock.nowMillis()
        let paused = try await queue.pause(by: "ops-alice")
        XCTAssertTrue(paused)
        clock.advance(millis: 10)
        let pausedAgain = try await queue.pause(by: "ops-bob")
        XCTAssertFalse(pausedAgain)
        try await queue.delete(inFlight[0])
        try await queue.send(group: "g", body: body("two"))
        try await queue.send(group: "h", body: body("three"))
        let whilePaused = try await queue.receive(max: 10)
        XCTAssertEqual(whilePaused, [])
        let stats = try await queue.stats()
        XCTAssertEqual(stats, QueueStats(depth: 2, inFlight: 0, oldestAgeMillis: 0, deadLetters: 0, pause: QueuePause(atMillis: pausedAt, by: "ops-alice")))

        let other = try openTestDatabase(db.path)
        let elsewhere = DurableQueue(database: other, configuration: queue.configuration, clock: clock)
        let otherReceives = try await elsewhere.receive(max: 10)
        XCTAssertEqual(otherReceives, [], "another process sees the pause")
        let resumed = try await elsewhere.resume()
        XCTAssertTrue(resumed)
        let resumedAgain = try await elsewhere.resume()
        XCTAssertFalse(resumedAgain)
        other.close()
        let delivered = try await queue.receive(max: 10).map(text)
        XCTAssertEqual(delivered, ["two", "three"])
        let after = try await queue.stats().pause
        XCTAssertNil(after)
    }

    /// Outbox: the message exists if and only if the caller's transaction committed.
    func testSendInsideTransactionCommitsWithIt() async throws {
        let queue = self.queue!
        _ = try? await db.write { tx in
            try tx.execute("INSERT INTO items (label) VALUES ('rolled back')")
            try queue.send(tx, group: "g", body: Array("lost".utf8))
            throw Boom()
        }
        try await db.write { tx in
            try tx.execute("INSERT INTO items (label) VALUES ('kept')")
            try queue.send(tx, group: "g", body: Array("kept".utf8))
        }
        let v16 = try await queue.receive(max: 10).map(text)
        XCTAssertEqual(v16, ["kept"])
        let labels = try await db.read { try $0.query("SELECT label FROM items") { $0.string(0) } }
        XCTAssertEqual(labels, ["kept"])
    }

    func testConsumerDeletesOnSuccessRetriesOnFailureAndRunsGroupsInParallel() async throws {
        var config = QueueConfiguration(name: "work")
        config.visibilityTimeoutMillis = 2_000
        let real = DurableQueue(database: db, configuration: config)  // real clock: the consumer sleeps
        for g in ["a", "b", "c", "d"] {
            for i in 1...3 { try await real.send(group: g, body: Array("\(g)\(i)".utf8)) }
        }
        try await real.send(group: "flaky", body: Array("flaky".utf8))
        let log = Received()
        let concurrent = Concurrency()
        let consumer = QueueConsumer(queue: real, concurrency: 4, retryBaseMillis: 20, idlePoll: .milliseconds(20), report: { _ in }) {
            message in
            let name = String(decoding: message.body, as: UTF8.self)
            await concurrent.enter()
            defer { Task { await concurrent.leave() } }
            try await Task.sleep(for: .milliseconds(20))
            if name == "flaky" && message.receiveCount < 2 { throw Boom() }
            await log.add(Int(message.id))
        }
        let task = Task { await consumer.run() }
        for _ in 0..<300 {
            let stats = try await real.stats()
            if stats.depth + stats.inFlight == 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        task.cancel()
        await task.value
        let handled = await log.values
        XCTAssertEqual(handled.count, 13, "every message handled once, the flaky one on its second receive")
        let v17 = try await real.stats()
        XCTAssertEqual(v17, QueueStats(depth: 0, inFlight: 0, oldestAgeMillis: 0, deadLetters: 0))
        let peak = await concurrent.peak
        XCTAssertGreaterThan(peak, 1, "groups were handled in parallel")
        XCTAssertLessThanOrEqual(peak, 4, "never more than the configured concurrency")
    }
}

actor Concurrency {
    var now = 0
    var peak = 0
    func enter() { now += 1; peak = max(peak, now) }
    func leave() { now -= 1 }
}
