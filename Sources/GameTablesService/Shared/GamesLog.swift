import Wire

/// One JSON log line of the game-tables roles: time, service, event, then fields.
enum GamesLog {
    static func line(_ event: String, service: String = "games", _ fields: [(String, String)]) -> String {
        JSONLine.event(service: service, event, fields)
    }
}
