import Foundation
import CLinux
import Glibc
import Synchronization

/// Something registered with an event loop. All calls happen on the loop's thread.
protocol LoopHandler: AnyObject {
    var fd: Int32 { get }
    func readable()
    func writable()
    /// Called every `EventLoop.tickInterval` for timeouts.
    func tick(nowMillis: Int64)
}

/// One thread running epoll for many sockets. Reads and connection
/// bookkeeping happen here; writes may come from any thread (see
/// `SocketConnection`). Closures from other threads run via `execute`,
/// woken through an eventfd.
final class EventLoop: @unchecked Sendable {
    // @unchecked: `handlers` is touched only on the loop thread; `pending` is behind a Mutex.
    static let tickIntervalMillis: Int64 = 100

    let epfd: Int32
    private let wakeFD: Int32
    private let pending = Mutex<(tasks: [@Sendable () -> Void], woken: Bool)>(([], false))
    private var handlers: [Int32: LoopHandler] = [:]
    private var lastTick: Int64 = 0
    let name: String
    /// One read buffer per loop, reused by every socket read on this thread.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)

    init(name: String) {
        self.name = name
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        var ev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: wakeFD))
        epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, &ev)
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Runs `task` on the loop thread, soon.
    func execute(_ task: @escaping @Sendable () -> Void) {
        let wake = pending.withLock { p -> Bool in
            p.tasks.append(task)
            defer { p.woken = true }
            return !p.woken
        }
        if wake {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// Loop thread only.
    func register(_ handler: LoopHandler, writable: Bool = false) {
        handlers[handler.fd] = handler
        var ev = epoll_event(events: events(writable: writable), data: epoll_data_t(fd: handler.fd))
        epoll_ctl(epfd, EPOLL_CTL_ADD, handler.fd, &ev)
    }

    /// Loop thread only: forgets and closes the socket.
    func deregisterAndClose(_ fd: Int32) {
        handlers[fd] = nil
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
        close(fd)
    }

    /// Any thread: turns interest in writability on or off (epoll_ctl is thread-safe).
    func setWriteInterest(_ fd: Int32, _ on: Bool) {
        var ev = epoll_event(events: events(writable: on), data: epoll_data_t(fd: fd))
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    private func events(writable: Bool) -> UInt32 {
        EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (writable ? EPOLLOUT.rawValue : 0)
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while true {
            let n = epoll_wait(epfd, &events, Int32(events.count), Int32(EventLoop.tickIntervalMillis))
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
            let tasks = pending.withLock { p -> [@Sendable () -> Void] in
                defer { p.tasks.removeAll(keepingCapacity: true); p.woken = false }
                return p.tasks
            }
            for t in tasks { t() }
            let now = EventLoop.nowMillis()
            if now - lastTick >= EventLoop.tickIntervalMillis {
                lastTick = now
                for h in Array(handlers.values) { h.tick(nowMillis: now) }
            }
        }
    }

    static func nowMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// A fixed set of event loops shared by servers and clients in a process.
public final class EventLoopGroup: Sendable {
    let loops: [EventLoop]
    private let next = Atomic<Int>(0)

    public init(threads: Int) {
        loops = (0..<max(1, threads)).map { EventLoop(name: "croupier.wire.loop\($0)") }
    }

    /// One loop per core, at most 4.
    public static let shared = EventLoopGroup(threads: min(4, max(1, ProcessInfo.processInfo.activeProcessorCount)))

    func nextLoop() -> EventLoop {
        loops[next.add(1, ordering: .relaxed).oldValue % loops.count]
    }
}
