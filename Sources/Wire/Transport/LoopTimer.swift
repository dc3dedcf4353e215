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
    /// `LoopClock` nanoseconds.
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
/// every timer knows its index, so cancelling one is O(log n). Each entry
/// carries its deadline, so comparisons never touch a timer object, and
/// sifting moves entries into a hole instead of swapping them: per call with
/// a deadline this took 11 retain/release pairs, now about one. Loop thread only.
struct TimerHeap {
    private struct Entry {
        let deadline: Int64
        let timer: LoopTimer
    }

    private var items: [Entry] = []

    var earliest: Int64? { items.first?.deadline }
    var count: Int { items.count }

    mutating func insert(_ t: LoopTimer) {
        guard t.heapIndex < 0, !t.cancelled else { return }
        t.heapIndex = items.count
        items.append(Entry(deadline: t.deadline, timer: t))
        siftUp(t.heapIndex)
    }

    mutating func remove(_ t: LoopTimer) {
        let i = t.heapIndex
        guard i >= 0, i < items.count, items[i].timer === t else { return }
        t.heapIndex = -1
        let last = items.removeLast()
        guard i < items.count else { return }
        last.timer.heapIndex = i
        let up = i > 0 && last.deadline < items[(i - 1) / 2].deadline
        items[i] = last
        if up { siftUp(i) } else { siftDown(i) }
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    mutating func popDue(now: Int64) -> LoopTimer? {
        guard let first = items.first, first.deadline <= now else { return nil }
        remove(first.timer)
        return first.timer
    }

    /// Moves the entry at `start` towards the root until its parent is not later.
    private mutating func siftUp(_ start: Int) {
        items.withUnsafeMutableBufferPointer { b in
            let base = b.baseAddress!
            var i = start
            let moving = (base + i).move()
            while i > 0 {
                let parent = (i - 1) / 2
                guard moving.deadline < base[parent].deadline else { break }
                (base + i).moveInitialize(from: base + parent, count: 1)
                base[i].timer.heapIndex = i
                i = parent
            }
            moving.timer.heapIndex = i
            (base + i).initialize(to: moving)
        }
    }

    /// Moves the entry at `start` towards the leaves until no child is earlier.
    private mutating func siftDown(_ start: Int) {
        items.withUnsafeMutableBufferPointer { b in
            let base = b.baseAddress!
            let n = b.count
            var i = start
            let moving = (base + i).move()
            while true {
                let l = 2 * i + 1
                guard l < n else { break }
                let child = l + 1 < n && base[l + 1].deadline < base[l].deadline ? l + 1 : l
                guard base[child].deadline < moving.deadline else { break }
                (base + i).moveInitialize(from: base + child, count: 1)
                base[i].timer.heapIndex = i
                i = child
            }
            moving.timer.heapIndex = i
            (base + i).initialize(to: moving)
        }
    }
}
