/// Frames a client may send that cost the gateway work but do none for the
/// client: WINDOW_UPDATE, SETTINGS, PRIORITY, empty DATA and PING. A client
/// that sends them without end holds its loop and grows nghttp2's queue of
/// acknowledgements; this decides when it has become a flood.
///
/// Pure value (the connection feeds it frames and the loop clock), loop
/// thread only. Two rules:
/// - Control frames spend tokens from a bucket of `burst`, refilled at
///   `refillPerSecond` and by `creditPerResponseFrame` for each frame the
///   gateway sends (a client acknowledging what it reads earns its
///   WINDOW_UPDATEs). An empty bucket is a flood.
/// - PINGs follow grpc-go's keepalive enforcement: a ping sooner than
///   `minPingInterval` after the last one (or `minPingIntervalIdle` when no
///   stream is open), with no response frame sent in between, is a strike;
///   more than `maxPingStrikes` strikes is a flood ("too_many_pings").
struct FrameFloodGuard {
    struct Limits: Sendable {
        var burst = 1_000.0
        var refillPerSecond = 100.0
        var creditPerResponseFrame = 4.0
        var minPingIntervalMillis: Int64 = 300_000
        var minPingIntervalIdleMillis: Int64 = 7_200_000
        var maxPingStrikes = 2
    }

    let limits: Limits
    private var tokens: Double
    private var refilledAt: Int64
    private var lastPingAt: Int64?
    private var pingStrikes = 0

    init(limits: Limits = Limits(), nowMillis: Int64) {
        self.limits = limits
        tokens = limits.burst
        refilledAt = nowMillis
    }

    /// A WINDOW_UPDATE, SETTINGS, PRIORITY or empty DATA frame arrived; the
    /// reason for refusing the connection if it is one too many.
    mutating func controlFrame(nowMillis now: Int64) -> String? {
        if now > refilledAt {
            tokens = min(limits.burst, tokens + Double(now - refilledAt) * limits.refillPerSecond / 1000)
            refilledAt = now
        }
        tokens -= 1
        return tokens < 0 ? "flood of control frames (WINDOW_UPDATE, SETTINGS, PRIORITY, empty DATA)" : nil
    }

    /// A PING (not an acknowledgement) arrived.
    mutating func ping(nowMillis now: Int64, streamsOpen: Bool) -> String? {
        let interval = streamsOpen ? limits.minPingIntervalMillis : limits.minPingIntervalIdleMillis
        if let last = lastPingAt, now - last < interval {
            pingStrikes += 1
            if pingStrikes > limits.maxPingStrikes { return "too_many_pings" }
        }
        lastPingAt = now
        return nil
    }

    /// The gateway sent a HEADERS or DATA frame: the client's pings and
    /// acknowledgements since are expected.
    mutating func responseFrameSent() {
        lastPingAt = nil
        pingStrikes = 0
        tokens = min(limits.burst, tokens + limits.creditPerResponseFrame)
    }
}
