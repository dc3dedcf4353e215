import Storage
import Synchronization
import Wire
import XCTest

/// Helpers shared by the service test targets.

/// A clock the test moves by hand.
public final class ManualClock: StorageClock {
    private let now: Mutex<Int64>
    public init(_ millis: Int64) { now = Mutex(millis) }
    public func nowMillis() -> Int64 { now.withLock { $0 } }
    public func advance(seconds: Int64) { now.withLock { $0 += seconds * 1000 } }
    public func advance(millis: Int64) { now.withLock { $0 += millis } }
}

/// Items gathered from @Sendable callbacks (log lines, streamed messages).
public final class Collected<T: Sendable>: Sendable {
    public let items = Mutex<[T]>([])
    public init() {}
    public func append(_ item: T) { items.withLock { $0.append(item) } }
    public var all: [T] { items.withLock { $0 } }
}

/// The status code and message a call failed with (fails the test if it succeeded).
public func statusOf<T>(_ body: () async throws -> T, file: StaticString = #filePath, line: UInt = #line) async -> (StatusCode, String) {
    do {
        _ = try await body()
        XCTFail("expected the call to fail", file: file, line: line)
        return (.ok, "")
    } catch let e as RPCError {
        return (e.code, e.message)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
        return (.unknown, "\(error)")
    }
}

/// Polls `condition` every 5 ms until it holds; fails the test after `timeout`.
public func eventually(
    _ what: String, timeout: Duration = .seconds(20), file: StaticString = #filePath, line: UInt = #line,
    _ condition: () async throws -> Bool
) async throws {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    XCTFail("timed out waiting for \(what)", file: file, line: line)
}
