import Foundation
import Synchronization

/// Runs a handler over a queue's messages until cancelled.
///
/// Up to `concurrency` messages (necessarily from different groups) are
/// handled at once. A handler that returns deletes its message; one that
/// throws `Postpone` gets it back later with its receive not counted; one that
/// throws anything else leaves it for redelivery after a backoff (2^(receives-1) × base,
/// capped by the visibility timeout). While a handler runs, its message's
/// visibility is extended every third of the timeout (heartbeat), so long
/// jobs are not redelivered — unless the process dies, which stops the
/// heartbeat and lets the message reappear.
public struct QueueConsumer: Sendable {
    public typealias Handler = @Sendable (ReceivedMessage) async throws -> Void

    /// Thrown by a handler that cannot start yet (a lock it needs is busy):
    /// the message comes back after `delayMillis` without using up a receive.
    public struct Postpone: Error, CustomStringConvertible {
        public let delayMillis: Int64
        public let reason: String
        public init(delayMillis: Int64, reason: String) {
            self.delayMillis = delayMillis
            self.reason = reason
        }
        public var description: String { "postponed \(delayMillis) ms: \(reason)" }
    }

    let queue: DurableQueue
    let concurrency: Int
    let retryBaseMillis: Int64
    let idlePoll: Duration
    let handler: Handler
    let report: @Sendable (String) -> Void

    public init(
        queue: DurableQueue, concurrency: Int, retryBaseMillis: Int64 = 1_000, idlePoll: Duration = .seconds(1),
        report: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("queue: " + $0 + "\n").utf8)) },
        handler: @escaping Handler
    ) {
        self.queue = queue
        self.concurrency = max(1, concurrency)
        self.retryBaseMillis = retryBaseMillis
        self.idlePoll = idlePoll
        self.handler = handler
        self.report = report
    }

    /// Consumes until the calling task is cancelled; waits for running handlers.
    public func run() async {
        let running = RunningCount()
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                // Read the generation before looking for work, so a commit or a
                // finished handler in between cannot be missed.
                let generation = queue.signal.generation
                let free = concurrency - running.value.load(ordering: .acquiring)
                var messages: [ReceivedMessage] = []
                if free > 0 {
                    do {
                        messages = try await queue.receive(max: free)
                    } catch {
                        report("receive from \(queue.name) failed: \(error)")
                    }
                }
                for m in messages {
                    running.value.add(1, ordering: .releasing)
                    group.addTask {
                        await self.process(m)
                        running.value.subtract(1, ordering: .releasing)
                        self.queue.signal.signal()
                    }
                }
                if messages.isEmpty {
                    await queue.signal.wait(since: generation, timeout: idlePoll)
                }
            }
        }
    }

    private func process(_ message: ReceivedMessage) async {
        let timeout = queue.configuration.visibilityTimeoutMillis
        let heartbeat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(max(10, timeout / 3)))
                if Task.isCancelled { return }
                do { try await queue.changeVisibility(message, timeoutMillis: timeout) } catch {
                    report("heartbeat for message \(message.id) failed: \(error)")
                }
            }
        }
        defer { heartbeat.cancel() }
        do {
            try await handler(message)
            heartbeat.cancel()
            try await queue.delete(message)
        } catch let error as QueueError {
            report("message \(message.id): \(error)")
        } catch let wait as Postpone {
            heartbeat.cancel()
            do { try await queue.postpone(message, delayMillis: wait.delayMillis) } catch {
                report("could not postpone message \(message.id): \(error)")
            }
        } catch {
            heartbeat.cancel()
            let backoff = min(timeout, retryBaseMillis << min(20, Int64(message.receiveCount - 1)))
            report("handler failed for message \(message.id) (receive \(message.receiveCount)); retry in \(backoff) ms: \(error)")
            do { try await queue.changeVisibility(message, timeoutMillis: backoff) } catch {
                report("could not delay message \(message.id): \(error)")
            }
        }
    }
}

/// Handlers in flight, shared between the consumer loop and its child tasks.
private final class RunningCount: Sendable {
    let value = Atomic<Int>(0)
}
