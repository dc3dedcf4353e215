import Wire

/// One JSON log line of the game-tables roles: time, service, event, then fields.
enum GamesLog {
    static func line(_ event: String, service: String = "games", _ fields: [(String, String)]) -> String {
        var w = JSONLine()
        w.time("time")
        w.field("service", service)
        w.field("event", event)
        for (k, v) in fields where !v.isEmpty { w.field(k, v) }
        return w.finish()
    }
}
