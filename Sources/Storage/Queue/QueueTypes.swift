/// A queue's settings. Defaults are SQS FIFO's where the issue names them.
public struct QueueConfiguration: Sendable {
    public var name: String
    /// How long a received message stays hidden before it is delivered again.
    public var visibilityTimeoutMillis: Int64 = 30 * 60 * 1000
    /// Receives after which the next attempt moves the message to the dead-letter queue.
    public var maxReceiveCount: Int = 3
    /// Messages older than this are dropped (dead letters: this long after they died).
    public var retentionMillis: Int64 = 24 * 60 * 60 * 1000
    public var maxMessageBytes: Int = 4096
    /// A second send with the same de-duplication id within this window is a duplicate.
    public var deduplicationWindowMillis: Int64 = 5 * 60 * 1000

    public init(name: String) { self.name = name }
}

/// Which earlier send a send with the same de-duplication id collapses into.
public enum DeduplicationScope: Sendable, Equatable {
    /// Any within the window, delivered or not (SQS FIFO): an outbox that
    /// re-sends after a crash never enqueues twice.
    case window
    /// Only one not yet delivered: a request made again once the first is
    /// being handled, finished or dead-lettered is a new request (an
    /// operator's "do it again" must always do it again).
    case whilePending
}

/// A live message as an operator sees it.
public struct QueuedMessage: Sendable, Equatable {
    public let id: Int64
    public let groupID: String
    public let body: [UInt8]
    public let receiveCount: Int
    public let sentAtMillis: Int64
    /// When it may be delivered (again); in the future while it is in flight or waiting for a retry.
    public let visibleAtMillis: Int64
    /// Received and not yet deleted, released or expired.
    public let inFlight: Bool
}

public struct SendResult: Sendable, Equatable {
    public let messageID: Int64
    /// True when the send matched an earlier one inside the de-duplication
    /// window: nothing was enqueued and `messageID` is the original's.
    public let duplicate: Bool

    public init(messageID: Int64, duplicate: Bool) {
        self.messageID = messageID
        self.duplicate = duplicate
    }
}

public struct ReceivedMessage: Sendable, Equatable {
    public let id: Int64
    public let groupID: String
    public let body: [UInt8]
    /// 1 on first delivery.
    public let receiveCount: Int
    /// Proves this receive; needed to delete the message or change its visibility.
    public let receipt: String
    public let sentAtMillis: Int64
    /// The request that sent it, as far as the sender said.
    public let origin: MessageOrigin
}

/// The request a message was sent for (SQS keeps the trace as the
/// AWSTraceHeader system attribute): it goes with the message, so the
/// consumer's log lines name the request that asked for the work. No part
/// of de-duplication.
public struct MessageOrigin: Sendable, Equatable {
    /// A W3C traceparent.
    public var traceHeader: String?
    public var correlationID: String?

    public init(traceHeader: String? = nil, correlationID: String? = nil) {
        self.traceHeader = traceHeader
        self.correlationID = correlationID
    }
}

public struct DeadLetter: Sendable, Equatable {
    public let id: Int64
    public let groupID: String
    public let body: [UInt8]
    public let receiveCount: Int
    public let sentAtMillis: Int64
    public let diedAtMillis: Int64
}

public struct QueueStats: Sendable, Equatable {
    /// Messages waiting to be delivered.
    public let depth: Int
    /// Messages received and neither deleted nor back to visible.
    public let inFlight: Int
    /// Age of the oldest live message, 0 when empty.
    public let oldestAgeMillis: Int64
    public let deadLetters: Int
    /// Set while the queue is paused.
    public let pause: QueuePause?

    public init(depth: Int, inFlight: Int, oldestAgeMillis: Int64, deadLetters: Int, pause: QueuePause? = nil) {
        self.depth = depth
        self.inFlight = inFlight
        self.oldestAgeMillis = oldestAgeMillis
        self.deadLetters = deadLetters
        self.pause = pause
    }
}

/// Who paused a queue, and when.
public struct QueuePause: Sendable, Equatable {
    public let atMillis: Int64
    public let by: String

    public init(atMillis: Int64, by: String) {
        self.atMillis = atMillis
        self.by = by
    }
}

public enum QueueError: Error, Sendable, Equatable, CustomStringConvertible {
    case messageTooLarge(size: Int, max: Int)
    case emptyGroupID
    /// The receipt is not the message's current one: it was deleted, or
    /// redelivered (its visibility expired) and received again.
    case receiptInvalid(messageID: Int64)

    public var description: String {
        switch self {
        case .messageTooLarge(let size, let max): return "message of \(size) bytes exceeds the queue's \(max)-byte limit"
        case .emptyGroupID: return "a message group id is required"
        case .receiptInvalid(let id): return "receipt for message \(id) is no longer valid (deleted or received again)"
        }
    }
}
