/// Starts the handlers that became due while one read was handled, many per
/// task (loop thread only).
///
/// A read usually completes many calls. Starting each handler as its own task
/// costs a task creation, an executor check and a task completion per call.
/// Instead, `startDue` starts one task, on the loop, that runs the due
/// handlers one after another right here. A handler that does not suspend
/// costs only an async call. When one suspends (a database commit, say), the
/// task stays with that call: the call adopts it, so cancellation and its
/// deadline reach it, and `startDue` starts a fresh task for the rest.
///
/// A task never takes a call after it resumes: due calls exist only while
/// `startDue` runs, and resumed tasks run later, as loop jobs.
final class HandlerStarter: @unchecked Sendable {
    // @unchecked: every field is touched only on the loop thread (by `startDue`
    // and by the tasks it starts, which run on the loop until they suspend).
    private let loop: EventLoop
    private var due: [ServerCall] = []
    private var next = 0
    /// The handler of `due[next - 1]` is running (it suspended if `startDue` sees this).
    private var running = false

    init(loop: EventLoop) { self.loop = loop }

    /// `call`'s handler should start (its request is complete, or it reads a request stream).
    func add(_ call: ServerCall) { due.append(call) }

    /// Runs every due handler, each until it first suspends.
    func startDue() {
        while next < due.count {
            let task = Task.immediate(executorPreference: loop) { [self] in await runDue() }
            if running {
                running = false
                due[next - 1].adopt(task)
            }
        }
        due.removeAll(keepingCapacity: true)
        next = 0
    }

    private func runDue() async {
        while next < due.count, !Task.isCancelled {
            let call = due[next]
            next += 1
            guard !call.isFinished else { continue }  // cancelled or timed out before it started
            running = true
            await call.runHandler()
            running = false
        }
    }
}
