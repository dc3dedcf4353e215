import Glibc

/// A server's handlers by method path, looked up straight from the bytes of
/// a CALL_START: no String is built and no UTF-8 validated per call.
/// Immutable after the server is made, so connections read it without locks.
final class MethodTable: Sendable {
    /// One method. Its parts are stored apart, so starting a call reads
    /// what it needs without copying the whole `RPCHandler` (three
    /// reference counts).
    final class Entry: Sendable {
        let path: [UInt8]
        let handler: RPCHandler
        let method: MethodDescriptor
        let unary: (@Sendable ([UInt8], ServerContext) async throws -> [UInt8])?
        init(_ handler: RPCHandler) {
            path = Array(handler.method.path.utf8)
            self.handler = handler
            method = handler.method
            unary = handler.unary
        }
    }

    /// Open addressing, linear probing, at most half full.
    private let slots: [Entry?]
    private let mask: Int

    init(_ handlers: [String: RPCHandler]) {
        var size = 8
        while size < handlers.count * 2 { size *= 2 }
        var slots = [Entry?](repeating: nil, count: size)
        for h in handlers.values {
            let entry = Entry(h)
            var i = entry.path.withUnsafeBytes { MethodTable.hash($0) } & (size - 1)
            while slots[i] != nil { i = (i + 1) & (size - 1) }
            slots[i] = entry
        }
        self.slots = slots
        mask = size - 1
    }

    func lookup(_ path: UnsafeRawBufferPointer) -> Entry? {
        var i = MethodTable.hash(path) & mask
        while let entry = slots[i] {
            let same = entry.path.count == path.count
                && entry.path.withUnsafeBytes { memcmp($0.baseAddress!, path.baseAddress!, path.count) == 0 }
            if same { return entry }
            i = (i + 1) & mask
        }
        return nil
    }

    /// FNV-1a: short paths, a fixed table; no need for a seeded hash.
    private static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return Int(truncatingIfNeeded: h)
    }
}
