import Foundation

/// One JSON line per call: time, correlation id, principal, method, status,
/// duration and bytes in/out. Other log lines of a call carry its
/// correlation id too (`line(_:correlationID:)`).
struct AccessLog: Sendable {
    let sink: @Sendable (String) -> Void

    struct Entry {
        var correlationID: String
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
        var object: [String: Any] = [
            "time": Self.timestamp(), "correlation_id": e.correlationID, "method": e.method, "status": e.status,
            "duration_ms": (e.durationMillis * 1000).rounded() / 1000, "bytes_in": e.bytesIn, "bytes_out": e.bytesOut, "peer": e.peer,
        ]
        object["principal"] = e.principal ?? NSNull()
        if !e.message.isEmpty { object["message"] = e.message }
        emit(object)
    }

    func line(_ text: String, correlationID: String) {
        emit(["time": Self.timestamp(), "correlation_id": correlationID, "event": text])
    }

    private func emit(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        sink(String(decoding: data, as: UTF8.self))
    }

    static func timestamp() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }
}
