@testable import Wire
import XCTest

/// The spin's rules with a scripted clock: how long it polls, what ends it
/// early, and how fruitless spins back off.
final class SpinPolicyTests: XCTestCase {
    /// A clock that advances by `step` ns per reading, and by `yieldCost` per yield.
    final class Script {
        var time: Int64 = 1_000_000
        var polls = 0
        let step: Int64
        let yieldCost: Int64
        let eventsAtPoll: Int?
        init(step: Int64 = 1_000, yieldCost: Int64 = 500, eventsAtPoll: Int? = nil) {
            (self.step, self.yieldCost, self.eventsAtPoll) = (step, yieldCost, eventsAtPoll)
        }
        func run(_ policy: inout SpinPolicy, limit: Int64? = nil) -> Int32 {
            policy.spin(
                limit: limit,
                now: { self.time += self.step; return self.time },
                poll: { self.polls += 1; return self.polls == self.eventsAtPoll ? 3 : 0 },
                yield: { self.time += self.yieldCost })
        }
    }

    func testPollsUntilTheSpinTimeRunsOut() {
        var policy = SpinPolicy(spinNanos: 50_000)
        let script = Script()
        XCTAssertEqual(script.run(&policy), 0)
        // 1.5 µs per poll (reading plus yield): about 50 / 1.5 polls.
        XCTAssertEqual(script.polls, 34)
        XCTAssertEqual(policy.skip, 1, "a fruitless spin makes the next busy iteration skip")
    }

    func testEventsEndTheSpinAndResetTheBackoff() {
        var policy = SpinPolicy(spinNanos: 50_000)
        _ = Script().run(&policy)
        _ = Script().run(&policy)  // skipped
        XCTAssertEqual(policy.backoff, 1)
        let script = Script(eventsAtPoll: 5)
        XCTAssertEqual(script.run(&policy), 3)
        XCTAssertEqual(script.polls, 5)
        XCTAssertEqual(policy.backoff, 0)
        XCTAssertEqual(policy.skip, 0)
    }

    /// A yield that kept the loop off the CPU for more than 20 µs means another
    /// thread needed this core: the spin stops after that one poll.
    func testAYieldThatLostTheCPUEndsTheSpin() {
        var policy = SpinPolicy(spinNanos: 50_000)
        let script = Script(yieldCost: 25_000)
        XCTAssertEqual(script.run(&policy), 0)
        XCTAssertEqual(script.polls, 1)
        XCTAssertEqual(policy.skip, 1, "giving way counts as fruitless")
        // Just under the threshold keeps spinning.
        var patient = SpinPolicy(spinNanos: 50_000)
        let busy = Script(yieldCost: 18_000)
        XCTAssertEqual(busy.run(&patient), 0)
        XCTAssertEqual(busy.polls, 3)
    }

    func testTheNextTimerEndsTheSpin() {
        var policy = SpinPolicy(spinNanos: 50_000)
        let script = Script()
        XCTAssertEqual(script.run(&policy, limit: script.time + 6_000), 0)
        XCTAssertEqual(script.polls, 4)
    }

    /// Fruitless spins skip 1, 2, 4 … up to 64 busy iterations, never polling while skipping.
    func testFruitlessSpinsBackOffUpToALimit() {
        var policy = SpinPolicy(spinNanos: 10_000)
        var skipped: [Int] = []
        for _ in 0..<9 {
            _ = Script().run(&policy)
            var n = 0
            while policy.skip > 0 {
                let script = Script()
                XCTAssertEqual(script.run(&policy), 0)
                XCTAssertEqual(script.polls, 0)
                n += 1
            }
            skipped.append(n)
        }
        XCTAssertEqual(skipped, [1, 2, 4, 8, 16, 32, 64, 64, 64])
    }
}
