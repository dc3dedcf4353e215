import Glibc

/// A one-shot deadline kept by an event loop (`EventLoop.schedule`): it
/// fires on the loop thread unless cancelled first. Call deadlines use it
/// instead of a sleeping task per call: arming and cancelling are a few heap
/// operations on the loop thread, and waiting costs nothing.
///
/// Firing and cancelling may race when a call ends on another thread; the
/// action must therefore tolerate running after its call ended (call
/// endings are first-wins).
public final class LoopTimer: @unchecked Sendable {
    // @unchecked: `heapIndex` and `cancelled` are touched only on the loop thread.
    /// Monotonic nanoseconds (`EventLoop.nowNanos`).
    let deadline: Int64
    let action: @Sendable () -> Void
    /// Position in the loop's heap; -1 when not scheduled.
    var heapIndex = -1
    var cancelled = false

    init(deadline: Int64, action: @escaping @Sendable () -> Void) {
        self.deadline = deadline
        self.action = action
    }
}

/// The pending timers of one loop: a binary min-heap on deadline in which
/// every timer knows its index, so cancelling one is O(log n). Loop thread only.
struct TimerHeap {
    private var items: [LoopTimer] = []

    var earliest: Int64? { items.first?.deadline }
    var count: Int { items.count }

    mutating func insert(_ t: LoopTimer) {
        guard t.heapIndex < 0, !t.cancelled else { return }
        t.heapIndex = items.count
        items.append(t)
        siftUp(t.heapIndex)
    }

    mutating func remove(_ t: LoopTimer) {
        let i = t.heapIndex
        guard i >= 0, i < items.count, items[i] === t else { return }
        let last = items.removeLast()
        t.heapIndex = -1
        guard i < items.count else { return }
        items[i] = last
        last.heapIndex = i
        siftUp(i)
        siftDown(last.heapIndex)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    mutating func popDue(now: Int64) -> LoopTimer? {
        guard let first = items.first, first.deadline <= now else { return nil }
        remove(first)
        return first
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].deadline < items[parent].deadline else { break }
            swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count && items[l].deadline < items[smallest].deadline { smallest = l }
            if r < items.count && items[r].deadline < items[smallest].deadline { smallest = r }
            guard smallest != i else { return }
            swapAt(i, smallest)
            i = smallest
        }
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        items.swapAt(a, b)
        items[a].heapIndex = a
        items[b].heapIndex = b
    }
}
