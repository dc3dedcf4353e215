import Wire

/// One JSON line per call: time, correlation id, principal, method, status,
/// duration and bytes in/out. Other log lines of a call carry its
/// correlation id too (`line(_:correlationID:)`). Lines are written by hand:
/// Foundation's JSON and date formatters cost more than the whole call.
struct AccessLog: Sendable {
    let sink: @Sendable (String) -> Void

    struct Entry {
        /// The call's correlation id and trace.
        var request: RequestContext
        var principal: String?
        var method: String
        var status: String
        var message: String
        var durationMillis: Double
        var bytesIn: Int
        var bytesOut: Int
        var peer: String
    }

    func call(_ e: Entry) {
        var w = JSONLine()
        w.time("time")
        w.request(e.request)
        w.field("principal", e.principal)
        w.field("method", e.method)
        w.field("status", e.status)
        if !e.message.isEmpty { w.field("message", e.message) }
        w.raw("duration_ms", String(Double(Int((e.durationMillis * 1000).rounded())) / 1000))
        w.raw("bytes_in", String(e.bytesIn))
        w.raw("bytes_out", String(e.bytesOut))
        w.field("peer", e.peer)
        sink(w.finish())
    }

    func line(_ text: String, correlationID: String) {
        var w = JSONLine()
        w.time("time")
        w.field("correlation_id", correlationID)
        w.field("event", text)
        sink(w.finish())
    }
}
