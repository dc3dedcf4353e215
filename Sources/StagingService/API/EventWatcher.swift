import Wire

/// A client of `WatchEvents` that survives disconnects: it reconnects with
/// exponential backoff (100 ms doubling, capped) and resumes after the last
/// offset it delivered, so the caller sees every event exactly once, in
/// order, across reconnects.
public struct EventWatcher: Sendable {
    let client: Croupier_Staging_V1_StagingService.Client
    let game: String
    let maxBackoff: Duration

    public init(channel: any RPCChannel, game: String = "", maxBackoff: Duration = .seconds(5)) {
        client = .init(channel: channel)
        self.game = game
        self.maxBackoff = maxBackoff
    }

    /// Delivers events after `offset` until the calling task is cancelled.
    /// `onReconnect` hears why each watch ended (an error, or the server
    /// closing the stream, e.g. while it restarts) before the next one starts.
    public func run(
        after offset: Int64, onReconnect: @escaping @Sendable (String) -> Void = { _ in },
        _ deliver: @escaping @Sendable (Croupier_Staging_V1_StagingEvent) async throws -> Void
    ) async throws {
        let last = OffsetBox(offset)
        var backoff: Duration = .milliseconds(100)
        while !Task.isCancelled {
            do {
                try await client.watchEvents(.with {
                    $0.gameSlug = game
                    $0.afterOffset = last.value
                }) { event in
                    guard event.offset > last.value else { return }  // never twice
                    try await deliver(event)
                    last.value = event.offset
                }
                backoff = .milliseconds(100)
                if !Task.isCancelled { onReconnect("the server ended the stream") }
            } catch is CancellationError {
                return
            } catch let e as RPCError where e.code == .cancelled && Task.isCancelled {
                return
            } catch {
                onReconnect("\(error)")
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, maxBackoff)
            }
        }
    }
}

/// The last delivered offset, shared with the response callback.
final class OffsetBox: @unchecked Sendable {
    // Written only from the watch call's callback, which runs one event at a time.
    var value: Int64
    init(_ v: Int64) { value = v }
}
