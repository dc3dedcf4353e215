import Foundation
import Wire
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
}

private extension ISO8601DateFormatter {
    static var withFractionalSeconds: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}
