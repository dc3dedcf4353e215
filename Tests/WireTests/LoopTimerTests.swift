import Synchronization
@testable import Wire
import XCTest

/// Call deadlines are loop timers: a heap that fires in deadline order,
/// forgets cancelled timers at once, and is safe to arm and cancel from any thread.
final class LoopTimerTests: XCTestCase {
    func testHeapPopsInDeadlineOrderAndRemovesAnyTimer() {
        var heap = TimerHeap()
        var timers: [LoopTimer] = []
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let t = LoopTimer(deadline: Int64.random(in: 0..<10_000, using: &rng), action: {})
            timers.append(t)
            heap.insert(t)
        }
        // Cancel every third timer, wherever it sits in the heap.
        for (i, t) in timers.enumerated() where i % 3 == 0 { heap.remove(t) }
        XCTAssertEqual(heap.count, 500 - 167)
        var popped: [Int64] = []
        while let t = heap.popDue(now: .max) { popped.append(t.deadline) }
        XCTAssertEqual(popped, timers.enumerated().filter { $0.offset % 3 != 0 }.map(\.element.deadline).sorted())
        XCTAssertNil(heap.popDue(now: .max))
    }

    func testTimersFireOnTheLoopOnceAndCancelledOnesNever() async throws {
        let loop = EventLoop(name: "test.timers")
        let fired = Mutex<[Int]>([])
        let onLoopThread = Atomic<Bool>(true)
        var cancelled: [LoopTimer] = []
        for i in 0..<20 {
            let t = loop.schedule(at: .now + .milliseconds(20 + 5 * i)) {
                if !loop.inLoop { onLoopThread.store(false, ordering: .relaxed) }
                fired.withLock { $0.append(i) }
            }
            if i % 2 == 1 { cancelled.append(t) }
        }
        for t in cancelled { loop.cancel(t) }  // from this thread, not the loop's
        try await Task.sleep(for: .milliseconds(400))
        XCTAssertEqual(fired.withLock { $0 }, Array(stride(from: 0, to: 20, by: 2)))
        XCTAssertTrue(onLoopThread.load(ordering: .relaxed))
        let pending = await withCheckedContinuation { c in loop.execute { c.resume(returning: loop.pendingTimers) } }
        XCTAssertEqual(pending, 0)
    }

    /// A deadline shorter than the loop's tick is not rounded up to it: the
    /// poll sleeps only until the earliest timer.
    func testPollSleepsOnlyUntilTheEarliestTimer() async throws {
        let loop = EventLoop(name: "test.short")
        let timeouts = await withCheckedContinuation { c in
            loop.execute {
                let idle = loop.pollTimeoutMillis()
                let timer = loop.schedule(at: .now + .milliseconds(5)) {}
                let armed = loop.pollTimeoutMillis()
                loop.cancel(timer)
                c.resume(returning: (idle, armed, loop.pollTimeoutMillis()))
            }
        }
        XCTAssertEqual(timeouts.0, Int32(EventLoop.tickIntervalMillis))
        XCTAssertLessThanOrEqual(timeouts.1, 5)
        XCTAssertEqual(timeouts.2, Int32(EventLoop.tickIntervalMillis))
    }

    /// Deadlines convert between `ContinuousClock` and loop nanoseconds by
    /// arithmetic: both sides read the same clock, and a round trip is exact.
    func testLoopClockAgreesWithContinuousClock() {
        let before = LoopClock.now()
        let instant = ContinuousClock.now
        let after = LoopClock.now()
        let nanos = LoopClock.nanos(instant)
        XCTAssertGreaterThanOrEqual(nanos, before - 1_000)  // the origin pair is a few ns apart
        XCTAssertLessThanOrEqual(nanos, after + 1_000)
        let later = instant + .milliseconds(1500)
        XCTAssertEqual(LoopClock.nanos(later) - nanos, 1_500_000_000)
        XCTAssertEqual(LoopClock.nanos(LoopClock.instant(nanos + 123_456_789)), nanos + 123_456_789)
        // Far-off instants neither overflow nor wrap around.
        XCTAssertGreaterThan(LoopClock.nanos(instant + .seconds(Int64.max / 2)), nanos + 3_000_000_000 * 1_000_000_000)
        XCTAssertLessThan(LoopClock.nanos(instant - .seconds(Int64.max / 2)), nanos)
    }
}

