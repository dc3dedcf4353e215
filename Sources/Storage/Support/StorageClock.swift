import Foundation

/// Wall-clock milliseconds since the Unix epoch. Queue visibility, dedup
/// windows and retention are wall-clock because they must hold across
/// process restarts; tests inject their own clock.
public protocol StorageClock: Sendable {
    func nowMillis() -> Int64
}

public struct SystemClock: StorageClock {
    public init() {}
    public func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }
}
