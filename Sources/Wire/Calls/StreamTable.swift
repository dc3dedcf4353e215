/// A connection's open calls by stream id.
///
/// A client numbers its streams 1, 3, 5, … so `id >> 1` puts the calls in
/// flight in consecutive slots of a direct-mapped table, with no hashing: a
/// `Dictionary` ran SipHash on every insert, lookup and removal, three times
/// per unary call on each side. An id whose slot is taken (a long-lived
/// stream that many newer ids have lapped, or an even id from a misbehaving
/// peer) goes to a small overflow dictionary. Linear probing was tried
/// first: consecutive ids make one long run of slots, and removing the
/// oldest call then walked the whole run.
struct StreamTable<Value> {
    private var slots: [(id: UInt32, value: Value?)]
    private var overflow: [UInt32: Value] = [:]
    private(set) var count = 0

    init() { slots = Array(repeating: (0, nil), count: 16) }

    var isEmpty: Bool { count == 0 }

    /// Every open call's value, in no particular order.
    var values: [Value] { slots.compactMap { $0.id == 0 ? nil : $0.value } + overflow.values }

    private func slot(_ id: UInt32) -> Int { Int(id >> 1) & (slots.count - 1) }

    /// The value for stream `id`; 0 is never a stream.
    subscript(id: UInt32) -> Value? {
        let i = slot(id)
        if slots[i].id == id { return slots[i].value }
        return overflow.isEmpty ? nil : overflow[id]
    }

    /// Adds or replaces stream `id` (not 0).
    mutating func insert(_ value: Value, for id: UInt32) {
        precondition(id != 0, "stream 0 is the connection")
        if self[id] == nil {
            count += 1
            if count * 2 > slots.count { grow() }
        }
        place(value, for: id)
    }

    private mutating func place(_ value: Value, for id: UInt32) {
        let i = slot(id)
        if slots[i].id == 0 || slots[i].id == id {
            slots[i] = (id, value)
        } else {
            overflow[id] = value
        }
    }

    @discardableResult
    mutating func removeValue(for id: UInt32) -> Value? {
        let i = slot(id)
        let removed: Value?
        if slots[i].id == id {
            removed = slots[i].value
            slots[i] = (0, nil)
        } else {
            removed = overflow.isEmpty ? nil : overflow.removeValue(forKey: id)
        }
        if removed != nil { count -= 1 }
        return removed
    }

    /// Removes every entry, returning their values.
    mutating func removeAll() -> [Value] {
        defer { self = StreamTable() }
        return values
    }

    /// Doubles the slots and places every entry again, so that the calls in
    /// flight keep finding free slots and the overflow stays small.
    private mutating func grow() {
        let (oldSlots, oldOverflow) = (slots, overflow)
        slots = Array(repeating: (0, nil), count: oldSlots.count * 2)
        overflow = [:]
        for s in oldSlots where s.id != 0 { place(s.value!, for: s.id) }
        for (id, value) in oldOverflow { place(value, for: id) }
    }
}
