import Dispatch

/// Runs blocking work (pipe reads, process waits) on a Dispatch thread, so it
/// never occupies one of the few Swift concurrency threads.
func onBlockingThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
