import Foundation
import Glibc
@testable import Wire
import XCTest

/// Log lines are JSON any parser accepts, whatever the values hold.
final class JSONLineTests: XCTestCase {
    func testLinesParseBackToTheirValues() throws {
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{07} nul \u{00} é 日本 🂡"
        var w = JSONLine()
        w.field("text", tricky)
        w.field("absent", nil)
        w.number("n", -42)
        w.bool("ok", true)
        w.raw("ms", "1.5")
        w.time("time")
        let line = w.finish()
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["text"] as? String, tricky)
        XCTAssertTrue(object["absent"] is NSNull)
        XCTAssertEqual(object["n"] as? Int, -42)
        XCTAssertEqual(object["ok"] as? Bool, true)
        XCTAssertEqual(object["ms"] as? Double, 1.5)
        let time = try XCTUnwrap(object["time"] as? String)
        let parsed = try XCTUnwrap(ISO8601DateFormatter.withFractionalSeconds.date(from: time), time)
        XCTAssertLessThan(abs(parsed.timeIntervalSinceNow), 5, time)
        XCTAssertEqual(time.count, 24, time)  // 2026-11-23T18:40:01.123Z
        XCTAssertEqual(JSONLine.quote("a\"b"), #""a\"b""#)
    }

    /// Timestamps are formatted by arithmetic; glibc's `gmtime_r` is the
    /// reference, over leap days, century and 400-year rules, and random
    /// seconds from 1900 to 2400.
    func testTimestampsMatchGmtime() {
        var generator = SystemRandomNumberGenerator()
        let edges: [Int64] = [0, -1, 86_399, 86_400, 951_782_400, 951_868_800, 4_107_542_399, 4_107_542_400, -2_208_988_800, 13_574_563_199]
        let random = (0..<20_000).map { _ in Int64.random(in: -2_208_988_800...13_574_563_199, using: &generator) }
        for seconds in edges + random {
            var out: [UInt8] = []
            JSONLine.appendTimestamp(seconds: seconds, millis: 7, to: &out)
            var t = tm()
            var s = time_t(seconds)
            gmtime_r(&s, &t)
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.007Z", Int(t.tm_year) + 1900, Int(t.tm_mon) + 1, Int(t.tm_mday),
                Int(t.tm_hour), Int(t.tm_min), Int(t.tm_sec))
            XCTAssertEqual(String(decoding: out, as: UTF8.self), expected, "\(seconds)")
            if String(decoding: out, as: UTF8.self) != expected { return }
        }
    }
}

private extension ISO8601DateFormatter {
    static var withFractionalSeconds: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}
