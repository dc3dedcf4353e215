import Foundation
import CLinux
import Glibc
import Synchronization

/// Something registered with an event loop. All calls happen on the loop's thread.
public protocol LoopHandler: AnyObject {
    var fd: Int32 { get }
    func readable()
    func writable()
    /// Called every `EventLoop.tickInterval` for timeouts.
    func tick(nowMillis: Int64)
    /// Sends output produced during this loop iteration (see `EventLoop.flushLater`).
    func flushDeferred()
}

/// One thread running epoll for many sockets. Reads and connection
/// bookkeeping happen here; writes may come from any thread (see
/// `SocketConnection`). Closures and jobs from other threads run via
/// `execute`/`enqueue`, woken through an eventfd; from the loop thread itself
/// they are queued with no wake-up at all.
///
/// The loop is also a `TaskExecutor`: a task started with it as executor
/// preference (Wire handlers are) runs on this thread, so a call read here is
/// handled and answered here, with no hop to another thread and one `send`
/// per connection per loop iteration.
public final class EventLoop: TaskExecutor, @unchecked Sendable {
    // @unchecked: `handlers`, `dirty` and `lastTick` are touched only on the loop thread; `pending` is behind a Mutex.
    public static let tickIntervalMillis: Int64 = 100
    /// How long a busy loop polls before sleeping, by default (`SpinPolicy.spinNanos`).
    public static let defaultSpinMicros = 50

    private enum Work {
        case closure(@Sendable () -> Void)
        case job(UnownedJob)
    }

    let epfd: Int32
    private let wakeFD: Int32
    private let pending = Mutex<(work: [Work], woken: Bool)>(([], false))
    private let threadID = Atomic<UInt>(0)
    private var handlers: [Int32: LoopHandler] = [:]
    /// Connections with output written on this thread, flushed once at the end of the iteration.
    private var dirty: [LoopHandler] = []
    private var lastTick: Int64 = 0
    private var timers = TimerHeap()  // loop thread only
    /// Loop thread only: the monotonic time in milliseconds when this loop
    /// iteration's events came in; cheap enough to read per frame.
    public private(set) var iterationMillis = LoopClock.nowMillis()
    /// Times the loop slept through its whole poll timeout although work was
    /// already queued (work queued on this thread after the last check); 0 when healthy.
    private(set) var stalls = 0
    let name: String
    /// Loop thread only: when a busy iteration polls before sleeping.
    private var spin: SpinPolicy
    /// Spins started and polls made while spinning, readable from any thread (tests).
    let spinsStarted = Atomic<Int>(0)
    let spinPolls = Atomic<Int>(0)
    /// One read buffer per loop, reused by every socket read on this thread.
    public let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)

    init(name: String, spinMicros: Int = 0) {
        self.name = name
        spin = SpinPolicy(spinNanos: Int64(max(0, spinMicros)) * 1000)
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        var ev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: wakeFD))
        epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, &ev)
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Runs `task` on the loop thread, soon.
    public func execute(_ task: @escaping @Sendable () -> Void) { submit(.closure(task)) }

    public func enqueue(_ job: consuming ExecutorJob) { submit(.job(UnownedJob(job))) }

    private func submit(_ work: Work) {
        let onLoop = inLoop
        let wake = pending.withLock { p -> Bool in
            p.work.append(work)
            if onLoop || p.woken { return false }
            p.woken = true
            return true
        }
        if wake {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// True on this loop's own thread.
    public var inLoop: Bool { threadID.load(ordering: .relaxed) == UInt(bitPattern: Int(bitPattern: pthread_self())) }

    /// Loop thread only: `handler` has output to send; its `flushDeferred`
    /// runs at the end of this iteration.
    /// The handler keeps its own "already queued" flag.
    public func flushLater(_ handler: LoopHandler) { dirty.append(handler) }

    /// Loop thread only.
    public func register(_ handler: LoopHandler, writable: Bool = false) {
        handlers[handler.fd] = handler
        var ev = epoll_event(events: events(writable: writable), data: epoll_data_t(fd: handler.fd))
        epoll_ctl(epfd, EPOLL_CTL_ADD, handler.fd, &ev)
    }

    /// Loop thread only: forgets and closes the socket.
    public func deregisterAndClose(_ fd: Int32) {
        handlers[fd] = nil
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
        close(fd)
    }

    /// Loop thread only: `handler` takes over the registered socket with the same fd.
    public func replaceHandler(_ handler: LoopHandler) {
        precondition(handlers[handler.fd] != nil, "replaceHandler: fd \(handler.fd) is not registered")
        handlers[handler.fd] = handler
    }

    /// Any thread: turns interest in writability on or off (epoll_ctl is thread-safe).
    public func setWriteInterest(_ fd: Int32, _ on: Bool) {
        var ev = epoll_event(events: events(writable: on), data: epoll_data_t(fd: fd))
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    /// What a socket's reader wants reported.
    public enum ReadInterest {
        /// Input and the peer's hang-up.
        case input
        /// Only the peer's hang-up (a reader not taking input now still learns the client left).
        case hangUp
        /// Nothing (errors and a full hang-up are reported anyway).
        case none
    }

    /// Any thread: sets what is reported for `fd`, reading and writing.
    public func setInterest(_ fd: Int32, read: ReadInterest, writable: Bool) {
        let r: UInt32
        switch read {
        case .input: r = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
        case .hangUp: r = EPOLLRDHUP.rawValue
        case .none: r = 0
        }
        var ev = epoll_event(events: r | (writable ? EPOLLOUT.rawValue : 0), data: epoll_data_t(fd: fd))
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    /// Loop thread only: stops reporting `handler`'s socket for `millis`, then
    /// watches it again (if it is still registered).
    public func pauseReading(_ handler: LoopHandler, millis: Int64) {
        var ev = epoll_event(events: 0, data: epoll_data_t(fd: handler.fd))
        epoll_ctl(epfd, EPOLL_CTL_MOD, handler.fd, &ev)
        let (fd, id) = (handler.fd, ObjectIdentifier(handler))
        _ = schedule(atNanos: LoopClock.now() + millis * 1_000_000) { [self] in
            guard let h = handlers[fd], ObjectIdentifier(h) == id else { return }  // closed meanwhile
            var ev = epoll_event(events: events(writable: false), data: epoll_data_t(fd: fd))
            epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
        }
    }

    private func events(writable: Bool) -> UInt32 {
        EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (writable ? EPOLLOUT.rawValue : 0)
    }

    private func run() {
        threadID.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .relaxed)
        croupier_set_thread_name(String(name.suffix(15)))  // visible in top, perf, /proc
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var more = false
        var busy = false
        while true {
            let n = waitForEvents(&events, more: more, busy: busy)
            busy = n > 0
            iterationMillis = LoopClock.nowMillis()
            if n == 0 && !more && pending.withLock({ !$0.work.isEmpty }) { stalls += 1 }
            if n > 0 {
                for i in 0..<Int(n) {
                    let fd = events[i].data.fd
                    let mask = events[i].events
                    if fd == wakeFD {
                        var value: UInt64 = 0
                        _ = Glibc.read(wakeFD, &value, 8)
                        continue
                    }
                    guard let h = handlers[fd] else { continue }
                    if mask & EPOLLOUT.rawValue != 0 { h.writable() }
                    if mask & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0,
                        handlers[fd] === h
                    {
                        h.readable()
                    }
                }
            }
            fireDueTimers()
            more = runPending()
            flushDirty()
            // Flushing can queue work too (a writer waiting for the peer to drain resumes).
            if !more { more = pending.withLock { !$0.work.isEmpty } }
            let now = iterationMillis
            if now - lastTick >= EventLoop.tickIntervalMillis {
                lastTick = now
                for h in Array(handlers.values) { h.tick(nowMillis: now) }
            }
        }
    }

    /// Waits for events; with work queued (`more`) it only looks.
    ///
    /// After a busy iteration it first polls without sleeping, for up to
    /// `spin.spinNanos`. On this VM a thread that sleeps in `epoll_wait` costs its
    /// waker a cross-CPU wake-up of 20–40 µs: a peer's answer usually comes
    /// back sooner than that, and a loop that is still polling takes it at
    /// once. Between polls it yields, so a runnable thread waiting for this
    /// CPU runs; when it gives way and backs off is `SpinPolicy`'s rule. An
    /// idle loop (its last wait timed out) sleeps straight away.
    private func waitForEvents(_ events: inout [epoll_event], more: Bool, busy: Bool) -> Int32 {
        if more { return epoll_wait(epfd, &events, Int32(events.count), 0) }
        if busy && spin.spinNanos > 0 {
            let n = spinForEvents(&events)
            if n != 0 { return n }
        }
        return epoll_wait(epfd, &events, Int32(events.count), pollTimeoutMillis())
    }

    /// One spin (see `waitForEvents` and `SpinPolicy`): what a poll found,
    /// or 0 if nothing came in time, the spin gave way, or this turn is skipped.
    private func spinForEvents(_ events: inout [epoll_event]) -> Int32 {
        let skipped = spin.skip > 0
        if !skipped { spinsStarted.add(1, ordering: .relaxed) }
        return spin.spin(
            limit: timers.earliest,  // a due timer ends the spin
            now: LoopClock.now,
            poll: {
                spinPolls.add(1, ordering: .relaxed)
                return epoll_wait(epfd, &events, Int32(events.count), 0)
            },
            yield: { sched_yield() })
    }

    // MARK: Timers

    /// Runs `action` on this loop's thread at `deadline`, unless the returned
    /// timer is cancelled first. Any thread.
    public func schedule(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> LoopTimer {
        schedule(atNanos: LoopClock.nanos(deadline), action)
    }

    /// `schedule(at:)` with the deadline in `LoopClock` nanoseconds: no clock reading.
    func schedule(atNanos deadline: Int64, _ action: @escaping @Sendable () -> Void) -> LoopTimer {
        let timer = LoopTimer(deadline: deadline, action: action)
        if inLoop { timers.insert(timer) } else { execute { [self] in timers.insert(timer) } }
        return timer
    }

    /// Cancels `timer`; it may still fire if it was already due. Any thread.
    public func cancel(_ timer: LoopTimer) {
        if inLoop {
            timer.cancelled = true
            timers.remove(timer)
        } else {
            execute { [self] in
                timer.cancelled = true
                timers.remove(timer)
            }
        }
    }

    /// Timers waiting on this loop (loop thread; tests).
    var pendingTimers: Int { timers.count }

    private func fireDueTimers() {
        guard timers.earliest != nil else { return }
        let now = LoopClock.now()
        while let t = timers.popDue(now: now) { t.action() }
    }

    /// How long epoll may sleep: until the next tick or the earliest timer (loop thread).
    func pollTimeoutMillis() -> Int32 {
        guard let earliest = timers.earliest else { return Int32(EventLoop.tickIntervalMillis) }
        let wait = (earliest - LoopClock.now() + 999_999) / 1_000_000  // round up: never wake early
        return Int32(max(0, min(wait, EventLoop.tickIntervalMillis)))
    }

    /// Runs queued closures and jobs, including those they queue in turn, a
    /// bounded number of rounds; true if work is still waiting (poll again
    /// without blocking).
    private func runPending() -> Bool {
        var batch: [Work] = []
        for _ in 0..<8 {
            pending.withLock { p in
                swap(&batch, &p.work)
                p.woken = false
            }
            if batch.isEmpty { return false }
            for w in batch {
                switch w {
                case .closure(let c): c()
                case .job(let j): j.runSynchronously(on: asUnownedTaskExecutor())
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
        return pending.withLock { !$0.work.isEmpty }
    }

    private func flushDirty() {
        while !dirty.isEmpty {
            let connections = dirty
            dirty.removeAll(keepingCapacity: true)
            for c in connections { c.flushDeferred() }
        }
    }

}

/// A fixed set of event loops shared by servers and clients in a process.
public final class EventLoopGroup: Sendable {
    let loops: [EventLoop]
    private let next = Atomic<Int>(0)

    /// How long a busy loop of this group polls before it sleeps.
    public let spinMicros: Int

    public init(threads: Int, spinMicros: Int = 0) {
        self.spinMicros = max(0, spinMicros)
        loops = (0..<max(1, threads)).map { EventLoop(name: "wire.loop\($0)", spinMicros: spinMicros) }
    }

    /// One loop per core, at most 4; `CROUPIER_EVENT_LOOPS` overrides the count
    /// (e.g. 1 when the process shares a small machine with its peers), and
    /// `CROUPIER_SPIN_MICROS` how long a busy loop polls before it sleeps.
    public static let shared = EventLoopGroup(
        threads: defaultThreads(ProcessInfo.processInfo.environment), spinMicros: defaultSpinMicros(ProcessInfo.processInfo.environment))

    static func defaultSpinMicros(_ environment: [String: String]) -> Int {
        if let text = environment["CROUPIER_SPIN_MICROS"], let n = Int(text), n >= 0 { return min(n, 1_000) }
        return EventLoop.defaultSpinMicros
    }

    static func defaultThreads(_ environment: [String: String]) -> Int {
        if let text = environment["CROUPIER_EVENT_LOOPS"], let n = Int(text), n >= 1 { return min(n, 64) }
        return min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))
    }

    public func nextLoop() -> EventLoop {
        loops[next.add(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// An executor for tasks that mostly make Wire calls: one of the loops,
    /// round-robin. A task preferring it is resumed where responses arrive.
    public func nextExecutor() -> any TaskExecutor { nextLoop() }
}
