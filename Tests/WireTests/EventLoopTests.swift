import Foundation
import Glibc
import Synchronization
@testable import Wire
import XCTest

/// The event loop runs work queued during a flush in the next pass, not
/// after sleeping through its poll timeout (a response writer resumed by a
/// drain used to wait 100 ms this way).
final class EventLoopTests: XCTestCase {
    /// Each flush queues a job that asks for another flush: a chain of 20.
    final class Chain: LoopHandler, @unchecked Sendable {
        let fd: Int32
        let loop: EventLoop
        let links = Atomic<Int>(0)
        init(fd: Int32, loop: EventLoop) {
            self.fd = fd
            self.loop = loop
        }
        func readable() {}
        func writable() {}
        func tick(nowMillis: Int64) {}
        func flushDeferred() {
            loop.execute { [self] in
                if links.add(1, ordering: .relaxed).newValue < 20 { loop.flushLater(self) }
            }
        }
    }

    func testWorkQueuedWhileFlushingRunsWithoutWaitingForTheTimeout() async throws {
        let loop = EventLoop(name: "test.loop")
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[1]) }
        let chain = Chain(fd: fds[0], loop: loop)
        let stallsBefore = await onLoop(loop) { loop.stalls }
        loop.execute {
            loop.register(chain)
            loop.flushLater(chain)
        }
        while chain.links.load(ordering: .relaxed) < 20 { try await Task.sleep(for: .milliseconds(5)) }
        let stallsAfter = await onLoop(loop) { loop.stalls }
        XCTAssertEqual(stallsAfter - stallsBefore, 0, "the loop slept with work queued")
        loop.execute { loop.deregisterAndClose(chain.fd) }
    }

    /// `CROUPIER_EVENT_LOOPS` sets the loop count; nonsense falls back to one per core (at most 4).
    func testEventLoopCountFromTheEnvironment() {
        let perCore = min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))
        XCTAssertEqual(EventLoopGroup.defaultThreads([:]), perCore)
        XCTAssertEqual(EventLoopGroup.defaultThreads(["CROUPIER_EVENT_LOOPS": "1"]), 1)
        XCTAssertEqual(EventLoopGroup.defaultThreads(["CROUPIER_EVENT_LOOPS": "6"]), 6)
        XCTAssertEqual(EventLoopGroup.defaultThreads(["CROUPIER_EVENT_LOOPS": "0"]), perCore)
        XCTAssertEqual(EventLoopGroup.defaultThreads(["CROUPIER_EVENT_LOOPS": "many"]), perCore)
    }

    private func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in loop.execute { c.resume(returning: body()) } }
    }
}
