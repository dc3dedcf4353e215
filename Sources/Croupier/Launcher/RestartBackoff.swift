/// How long `croupier up` waits before restarting a component that exited:
/// 0.5 s, doubling per restart up to 30 s, and back to 0.5 s once the
/// component had been running for `stableMillis` (a crash after an hour of
/// service is a first crash, not the seventh in a row). Pure value.
struct RestartBackoff {
    var firstMillis = 500
    var maxMillis = 30_000
    var stableMillis: Int64 = 60_000
    /// Restarts in the current run of crashes.
    private(set) var restarts = 0

    /// The child exited after running `ranMillis`: the wait before starting it again.
    mutating func delayAfterExit(ranMillis: Int64) -> Int {
        if ranMillis >= stableMillis { restarts = 0 }
        restarts += 1
        return min(maxMillis, firstMillis << min(restarts - 1, 16))
    }
}
