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

    /// Output written on the loop thread waits for the end of the iteration
    /// until `earlyFlushWrites` writes or `earlyFlushBytes` bytes are
    /// buffered on that connection; then it leaves at once, so the peer
    /// starts while this side writes the rest. Order is kept throughout.
    func testLoopWritesLeaveEarlyOnceEnoughIsBuffered() async throws {
        let loop = EventLoop(name: "test.loop")
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        let peer = fds[1]
        defer { close(peer) }
        let connection = SocketConnection(fd: fds[0], loop: loop, peer: "pair", decoder: FrameDecoder(maxFrameSize: 1 << 20))
        let writes = SocketConnection.earlyFlushWrites, big = SocketConnection.earlyFlushBytes
        let seen = await onLoop(loop) { () -> [Int] in
            loop.register(connection)
            func waiting() -> Int {
                var buffer = [UInt8](repeating: 0, count: 4 * big)
                return max(0, recv(peer, &buffer, buffer.count, Int32(MSG_PEEK | MSG_DONTWAIT)))
            }
            for i in 1..<writes { connection.write { $0.append(UInt8(i)) } }
            let beforeLimit = waiting()
            connection.write { $0.append(UInt8(writes)) }
            let atLimit = waiting()
            connection.write { $0.append(0xAA) }
            let afterLimit = waiting()
            connection.write { $0 += [UInt8](repeating: 0xBB, count: big) }  // one large write
            return [beforeLimit, atLimit, afterLimit, waiting()]
        }
        XCTAssertEqual(seen, [0, writes, writes, writes + 1 + big])
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4 * big)
        while received.count < writes + 1 + big {
            let n = recv(peer, &buffer, buffer.count, 0)
            XCTAssertGreaterThan(n, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        XCTAssertEqual(received, (1...writes).map(UInt8.init) + [0xAA] + [UInt8](repeating: 0xBB, count: big))
        loop.execute { connection.close() }
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

    /// Reads whatever arrives and counts the reads.
    final class Sink: LoopHandler, @unchecked Sendable {
        let fd: Int32
        let reads = Atomic<Int>(0)
        init(fd: Int32) { self.fd = fd }
        func readable() {
            var buffer = [UInt8](repeating: 0, count: 64)
            while Glibc.read(fd, &buffer, buffer.count) > 0 { reads.add(1, ordering: .relaxed) }
        }
        func writable() {}
        func tick(nowMillis: Int64) {}
        func flushDeferred() {}
    }

    /// A loop polls after an iteration that had events, then
    /// sleeps: once traffic stops it makes no more polls. Spins that find
    /// nothing back off (1, 2, 4 … busy iterations skip spinning), so sparse
    /// traffic costs few spins; a loop made with no spin time never polls.
    func testABusyLoopPollsBrieflyThenSleepsAndBacksOffWhenPollingFindsNothing() async throws {
        for spinMicros in [2_000, 0] {
            let loop = EventLoop(name: "test.spin", spinMicros: spinMicros)
            var fds: [Int32] = [0, 0]
            XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
            let peer = fds[1]
            _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
            let sink = Sink(fd: fds[0])
            await onLoop(loop) { loop.register(sink) }
            // Ten bytes, each long after the last spin (2 ms) gave up.
            for i in 1...10 {
                var byte = UInt8(i)
                XCTAssertEqual(send(peer, &byte, 1, 0), 1)
                while sink.reads.load(ordering: .relaxed) < i { try await Task.sleep(for: .milliseconds(1)) }
                try await Task.sleep(for: .milliseconds(15))
            }
            let (spins, polls) = (loop.spinsStarted.load(ordering: .relaxed), loop.spinPolls.load(ordering: .relaxed))
            try await Task.sleep(for: .milliseconds(50))
            XCTAssertEqual(loop.spinPolls.load(ordering: .relaxed), polls, "an idle loop sleeps")
            if spinMicros == 0 {
                XCTAssertEqual(spins, 0)
                XCTAssertEqual(polls, 0)
            } else {
                // Spins after bursts 1, 3 and 6 (each finds nothing, so the next 1, 2, 4 skip).
                XCTAssertGreaterThanOrEqual(spins, 1)
                XCTAssertLessThanOrEqual(spins, 4, "fruitless spins back off")
                // Each spin polls at least once; how many more times depends
                // on the scheduler (a spin that was preempted gives way after
                // one poll), so repeated polling is proved by SpinPolicyTests
                // with a clock of its own, not here.
                XCTAssertGreaterThanOrEqual(polls, spins)
            }
            loop.execute { loop.deregisterAndClose(sink.fd) }
            close(peer)
        }
    }

    private func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in loop.execute { c.resume(returning: body()) } }
    }
}
