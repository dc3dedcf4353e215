/// The typed face of a stream of messages a call receives. Transports supply
/// encoded messages through `next`; this decodes them one at a time.
public struct RPCAsyncSequence<Message: ProtoMessage>: AsyncSequence, Sendable {
    public typealias Element = Message
    let nextBytes: @Sendable () async throws -> [UInt8]?
    let failure: StatusCode

    /// `failure` is the status for a message that does not decode.
    public init(failure: StatusCode = .invalidArgument, nextBytes: @escaping @Sendable () async throws -> [UInt8]?) {
        self.nextBytes = nextBytes
        self.failure = failure
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let nextBytes: @Sendable () async throws -> [UInt8]?
        let failure: StatusCode

        public mutating func next() async throws -> Message? {
            guard let bytes = try await nextBytes() else { return nil }
            return try RPCCodec.decode(Message.self, bytes, failure: failure)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(nextBytes: nextBytes, failure: failure) }
}

/// The typed face of a stream of messages a call sends.
public struct RPCWriter<Message: ProtoMessage>: Sendable {
    let sendBytes: @Sendable ([UInt8]) async throws -> Void

    public init(sendBytes: @escaping @Sendable ([UInt8]) async throws -> Void) {
        self.sendBytes = sendBytes
    }

    public func write(_ message: Message) async throws {
        try await sendBytes(message.serializedBytes())
    }

    public func write<S: Sequence>(contentsOf messages: S) async throws where S.Element == Message {
        for m in messages { try await write(m) }
    }
}

/// Message (de)serialization at the RPC boundary, with decode failures
/// mapped to a status a caller can act on.
public enum RPCCodec {
    /// A request that does not decode is the caller's error (INVALID_ARGUMENT);
    /// a response that does not decode is the server's (INTERNAL).
    @inlinable
    public static func decode<M: ProtoMessage>(_: M.Type, _ bytes: [UInt8], failure: StatusCode = .invalidArgument) throws -> M {
        do {
            return try M(serializedBytes: bytes)
        } catch let error as ProtoDecodingError {
            throw RPCError(failure, "message is not a valid \(M.protoMessageName): \(error)")
        }
    }
}
