/// Limits a Wire endpoint enforces (docs/wire.md, "Limits").
public struct WireLimits: Sendable {
    /// Largest frame payload accepted: a 4 MiB message plus room for nothing else.
    public var maxFrameSize: UInt32 = 4 * 1024 * 1024 + 64
    public var maxConcurrentStreams: UInt32 = 1024
    public var initialWindow: UInt32 = 1024 * 1024
    public var handshakeTimeoutMillis: Int64 = 5_000
    public var idleTimeoutMillis: Int64 = 5 * 60 * 1000
    public var maxPingsPerSecond: Int = 100

    public init() {}

    /// The longest call timeout taken as given (about 31 years); a longer
    /// `timeout_micros` counts as this long, so a deadline in nanoseconds
    /// never overflows.
    static let longestTimeoutMicros: UInt64 = 1_000_000_000_000_000

    var settings: Croupier_Wire_V1_Settings {
        .with {
            $0.maxFrameSize = maxFrameSize
            $0.maxConcurrentStreams = maxConcurrentStreams
            $0.initialWindow = initialWindow
        }
    }
}

/// A peer's SETTINGS as limits: a field it left at 0 means the default.
extension Croupier_Wire_V1_Settings {
    /// The largest message this peer accepts (its frame size).
    var maxMessageBytes: Int { Int(maxFrameSize == 0 ? WireLimits().maxFrameSize : maxFrameSize) }
    /// The credit this peer gives each new stream.
    var initialWindowBytes: Int { Int(initialWindow == 0 ? WireLimits().initialWindow : initialWindow) }
}
