import CLinux
import Glibc

/// Thin, checked wrappers over the POSIX socket calls the transport uses.
public enum Posix {
    public struct Failure: Error, CustomStringConvertible {
        let call: String
        let errno: Int32
        public var description: String { "\(call): \(String(cString: strerror(errno)))" }
    }

    static func check(_ result: Int32, _ call: String) throws -> Int32 {
        guard result >= 0 else { throw Failure(call: call, errno: errno) }
        return result
    }

    static func address(host: String, port: UInt16) throws -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else {
            throw Failure(call: "inet_pton(\(host))", errno: EINVAL)
        }
        return addr
    }

    /// A non-blocking listening socket; port 0 picks a free port.
    public static func listen(host: String, port: UInt16, backlog: Int32 = 1024) throws -> (fd: Int32, port: UInt16) {
        let fd = try check(socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), "socket")
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = try address(host: host, port: port)
        do {
            _ = try withUnsafePointer(to: &addr) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try check(bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)), "bind(\(host):\(port))")
                }
            }
            _ = try check(Glibc.listen(fd, backlog), "listen")
        } catch {
            close(fd)
            throw error
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, UInt16(bigEndian: bound.sin_port))
    }

    /// What one `accept` gave.
    public enum Accepted {
        case connection(fd: Int32, peer: String)
        /// Nothing pending (or a failure that needs no action).
        case none
        /// The process or system is out of descriptors (or socket memory): the
        /// pending connection stays queued, and the listener stays readable.
        case exhausted
    }

    /// Accepts one pending connection (non-blocking, no-delay).
    public static func accept(_ listener: Int32) -> Accepted {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        while true {
            let fd = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept4(listener, $0, &len, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if fd >= 0 {
                setNoDelay(fd)
                return .connection(fd: fd, peer: describe(addr))
            }
            switch errno {
            case EINTR, ECONNABORTED, EPROTO: continue  // that client gave up; the next may be waiting
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .exhausted
            default: return .none
            }
        }
    }

    /// Accepts every pending connection of `listener` (a handler registered on
    /// `loop`) and passes each to `take`. Out of descriptors, it calls `shed`
    /// (to close idle connections) and stops watching the listener for
    /// `backoffMillis`: level-triggered, it would otherwise wake the loop
    /// without end and spin a core while nothing can be accepted.
    public static func acceptAll(
        _ listener: LoopHandler, on loop: EventLoop, backoffMillis: Int64 = 100, shed: () -> Void, take: (Int32, String) -> Void
    ) {
        while true {
            switch accept(listener.fd) {
            case .connection(let fd, let peer): take(fd, peer)
            case .none: return
            case .exhausted:
                shed()
                loop.pauseReading(listener, millis: backoffMillis)
                return
            }
        }
    }

    /// Raises this process's open-file limit to its hard limit: a server holds
    /// one descriptor per client, and the default soft limit is 1024.
    public static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// A blocking, connected socket, for tools and tests (the loops use
    /// `startConnect`); closed again if the connect fails.
    public static func connectBlocking(host: String, port: UInt16) throws -> Int32 {
        let fd = try check(socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), "socket")
        var addr = try address(host: host, port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw Failure(call: "connect(\(host):\(port))", errno: e)
        }
        return fd
    }

    /// Starts a non-blocking connect; completion is signalled by writability.
    static func startConnect(host: String, port: UInt16) throws -> Int32 {
        let fd = try check(socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), "socket")
        setNoDelay(fd)
        var addr = try address(host: host, port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc < 0 && errno != EINPROGRESS {
            let e = errno
            close(fd)
            throw Failure(call: "connect(\(host):\(port))", errno: e)
        }
        return fd
    }

    /// The outcome of a non-blocking connect (0 = connected).
    static func socketError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        return err
    }

    /// Gives memory malloc holds free back to the system, after a burst of
    /// large buffers ended (glibc keeps it otherwise).
    public static func returnFreeMemory() { croupier_return_free_memory() }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    static func describe(_ addr: sockaddr_in) -> String {
        var a = addr.sin_addr
        var buf = [UInt8](repeating: 0, count: Int(INET_ADDRSTRLEN))
        buf.withUnsafeMutableBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { _ = inet_ntop(AF_INET, &a, $0, socklen_t(INET_ADDRSTRLEN)) }
        }
        let text = String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
        return "\(text):\(UInt16(bigEndian: addr.sin_port))"
    }
}
