import Dispatch
import Synchronization
import Wire

/// Converts JSON calls' messages (JSON ⇄ binary) without holding an event
/// loop: a small message is converted in place (a few microseconds), a large
/// one on a thread of its own, one at a time, while the loop goes on serving
/// every other connection. A 4 MiB body takes a loop's whole turn for tens of
/// milliseconds otherwise.
///
/// Messages waiting to be converted are bounded (`maxQueuedBytes`): past it a
/// call is refused RESOURCE_EXHAUSTED, so a client sending large JSON bodies
/// faster than they convert cannot make the gateway hold them all.
final class JSONTranscoder: Sendable {
    /// Messages up to this size are converted on the loop.
    static let inlineBytes = 16 << 10
    let mapping: ProtoJSON
    let maxQueuedBytes: Int
    private let queue = DispatchQueue(label: "croupier.gateway.json", qos: .utility)
    private let queuedBytes = Atomic<Int>(0)

    init(mapping: ProtoJSON, maxQueuedBytes: Int = 64 << 20) {
        self.mapping = mapping
        self.maxQueuedBytes = maxQueuedBytes
    }

    /// Runs `work` (a conversion of `size` bytes) and hands its result to
    /// `then` on `loop`: at once for a small message, else after the
    /// conversion thread ran it.
    func convert<T: Sendable>(
        size: Int, on loop: EventLoop, _ work: @escaping @Sendable (ProtoJSON) throws -> T,
        then: @escaping @Sendable (Result<T, Error>) -> Void
    ) {
        if size <= Self.inlineBytes { return then(Result { try work(mapping) }) }
        guard queuedBytes.add(size, ordering: .relaxed).newValue <= maxQueuedBytes else {
            queuedBytes.subtract(size, ordering: .relaxed)
            return then(.failure(RPCError(
                .resourceExhausted, "the gateway holds \(maxQueuedBytes >> 20) MiB of JSON waiting to be converted; retry shortly")))
        }
        queue.async { [self] in
            let result = Result { try work(mapping) }
            queuedBytes.subtract(size, ordering: .relaxed)
            loop.execute { then(result) }
        }
    }

    /// A request message in JSON as binary; INVALID_ARGUMENT naming the field if it does not map.
    func binary(
        fromJSON message: [UInt8], type: String, on loop: EventLoop, then: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void
    ) {
        convert(size: message.count, on: loop, { mapping in
            try mapping.binary(fromJSON: message.isEmpty ? "{}" : String(decoding: message, as: UTF8.self), type: type)
        }, then: { then($0.mapError { Self.status($0, else: .invalidArgument, "the request body is not a \(type) in JSON") }) })
    }

    /// A response message as JSON; INTERNAL if it does not map.
    func json(
        fromBinary message: [UInt8], type: String, on loop: EventLoop, then: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void
    ) {
        convert(size: message.count, on: loop, { mapping in try mapping.jsonBytes(fromBinary: message, type: type) }, then: {
            then($0.mapError { Self.status($0, else: .internal, "the response does not map to JSON") })
        })
    }

    func binary(fromJSON message: [UInt8], type: String, on loop: EventLoop) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { done in binary(fromJSON: message, type: type, on: loop) { done.resume(with: $0) } }
    }

    func json(fromBinary message: [UInt8], type: String, on loop: EventLoop) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { done in json(fromBinary: message, type: type, on: loop) { done.resume(with: $0) } }
    }

    /// A refusal of the transcoder itself (RESOURCE_EXHAUSTED) as it is; a mapping error as `code` with `what`.
    private static func status(_ error: Error, else code: StatusCode, _ what: String) -> RPCError {
        if let e = error as? RPCError { return e }
        return RPCError(code, "\(what): \(error)")
    }
}
