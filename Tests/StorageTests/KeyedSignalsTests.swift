import Foundation
import Storage
import XCTest

final class KeyedSignalsTests: XCTestCase {
    /// A raise wakes only its key's waiters, is never lost between reading
    /// the generation and waiting, and leaves no signal behind.
    func testARaiseWakesOnlyItsKeyAndLeavesNothingBehind() async throws {
        let signals = KeyedSignals()
        let a = signals.signal(for: "a")
        let b = signals.signal(for: "b")
        let (ga, gb) = (a.generation, b.generation)
        signals.raise("a")  // before the wait: still seen
        let started = ContinuousClock.now
        await a.wait(since: ga, timeout: .seconds(5))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(4), "the raise before the wait is not lost")
        await b.wait(since: gb, timeout: .milliseconds(50))
        XCTAssertEqual(b.generation, gb, "b was not raised")
        XCTAssertEqual(signals.count, 1, "a's signal is gone once raised")
        signals.drop("b")
        XCTAssertEqual(signals.count, 0)
        XCTAssertFalse(signals.signal(for: "a") === a, "a new wait on a takes a fresh signal")
    }

    func testInListsArePaddedToFewShapes() {
        let three = SQLInList([Int64(1), 2, 3])
        XCTAssertEqual(three.arguments.count, 100)
        XCTAssertEqual(three.sql.filter { $0 == "?" }.count, 100)
        XCTAssertEqual(three.arguments[3].sqlValue, .null)
        XCTAssertEqual(SQLInList(Array(Int64(1)...101)).arguments.count, 200)
        XCTAssertEqual(SQLInList([String](), step: 10).arguments.count, 10, "an empty list still parses and matches nothing")
    }
}
