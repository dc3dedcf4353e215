/// Lists of table ids as stored in one TEXT column: decimal, comma-separated.
enum IDList {
    static func encode(_ ids: [Int64]) -> String { ids.map(String.init).joined(separator: ",") }

    static func decode(_ text: String?) -> [Int64] {
        guard let text, !text.isEmpty else { return [] }
        return text.split(separator: ",").compactMap { Int64($0) }
    }

    static func encode(_ texts: [String]) -> String { texts.joined(separator: "\n") }

    static func decodeTexts(_ text: String?) -> [String] {
        guard let text, !text.isEmpty else { return [] }
        return text.split(separator: "\n").map(String.init)
    }
}

/// The day's "magic" archive time both sides share: 11:11:11 UTC.
public enum ArchiveTime {
    public static func of(dayContaining millis: Int64) -> Int64 {
        let day: Int64 = 86_400_000
        return (millis / day) * day + (11 * 3600 + 11 * 60 + 11) * 1000
    }
}
