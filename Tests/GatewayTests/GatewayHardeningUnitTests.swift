import Foundation
@testable import Gateway
import Wire
import XCTest

/// The pure rules behind the gateway's defences: the flood guard, the
/// buffer budget, strict JWT parsing and the metrics' bounded labels.
final class GatewayHardeningUnitTests: XCTestCase {
    let secret = Array("hardening-unit-secret".utf8)

    func testControlFramesSpendABudgetThatResponsesAndTimeRefill() {
        var guardian = FrameFloodGuard(nowMillis: 0)
        for i in 0..<1_000 { XCTAssertNil(guardian.controlFrame(nowMillis: 0), "frame \(i)") }
        XCTAssertNotNil(guardian.controlFrame(nowMillis: 0), "the 1,001st control frame in an instant is a flood")
        // 100 per second come back with time.
        var later = FrameFloodGuard(nowMillis: 0)
        for _ in 0..<1_000 { _ = later.controlFrame(nowMillis: 0) }
        for i in 0..<100 { XCTAssertNil(later.controlFrame(nowMillis: 1_000), "refilled frame \(i)") }
        XCTAssertNotNil(later.controlFrame(nowMillis: 1_000))
        // A client acknowledging what it reads earns its WINDOW_UPDATEs: 4 per response frame.
        var reader = FrameFloodGuard(nowMillis: 0)
        for _ in 0..<1_000 { _ = reader.controlFrame(nowMillis: 0) }
        for _ in 0..<10_000 {
            reader.responseFrameSent()
            XCTAssertNil(reader.controlFrame(nowMillis: 0))
            XCTAssertNil(reader.controlFrame(nowMillis: 0))
        }
    }

    func testPingsFollowGrpcGoKeepaliveEnforcement() {
        var limits = FrameFloodGuard.Limits()
        limits.minPingIntervalMillis = 10_000
        limits.minPingIntervalIdleMillis = 60_000
        var g = FrameFloodGuard(limits: limits, nowMillis: 0)
        // Three strikes are forgiven, the third too soon after them is not.
        XCTAssertNil(g.ping(nowMillis: 0, streamsOpen: true))
        XCTAssertNil(g.ping(nowMillis: 2_000, streamsOpen: true))
        XCTAssertNil(g.ping(nowMillis: 4_000, streamsOpen: true))
        XCTAssertEqual(g.ping(nowMillis: 6_000, streamsOpen: true), "too_many_pings")
        // Pings at the allowed interval never strike.
        var polite = FrameFloodGuard(limits: limits, nowMillis: 0)
        for i in 0..<100 { XCTAssertNil(polite.ping(nowMillis: Int64(i) * 10_000, streamsOpen: true)) }
        // Data sent in between makes a ping expected (a BDP probe follows data).
        var busy = FrameFloodGuard(limits: limits, nowMillis: 0)
        for i in 0..<100 {
            busy.responseFrameSent()
            XCTAssertNil(busy.ping(nowMillis: Int64(i) * 10, streamsOpen: true))
        }
        // With no stream open the interval is the longer one.
        var idle = FrameFloodGuard(limits: limits, nowMillis: 0)
        XCTAssertNil(idle.ping(nowMillis: 0, streamsOpen: false))
        XCTAssertNil(idle.ping(nowMillis: 20_000, streamsOpen: false))
        XCTAssertNil(idle.ping(nowMillis: 40_000, streamsOpen: false))
        XCTAssertNotNil(idle.ping(nowMillis: 59_000, streamsOpen: false))
    }

    func testBufferBudgetReservesWithinItsCapAndCountsWhatIsHeld() {
        let budget = BufferBudget(capBytes: 1_000)
        XCTAssertTrue(budget.reserve(600))
        XCTAssertFalse(budget.reserve(500), "past the cap")
        XCTAssertTrue(budget.reserve(400))
        XCTAssertFalse(budget.hasRoom)
        budget.add(100)  // bytes already received are counted even past the cap
        XCTAssertEqual(budget.usedBytes, 1_100)
        budget.release(1_100)
        XCTAssertEqual(budget.usedBytes, 0)
        XCTAssertTrue(budget.hasRoom)
        // Racing reservations never overshoot.
        let race = BufferBudget(capBytes: 10_000)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in for _ in 0..<10_000 { if race.reserve(7) { } } }
        XCTAssertLessThanOrEqual(race.usedBytes, 10_000)
        XCTAssertGreaterThan(race.usedBytes, 10_000 - 7)
    }

    /// A token signed over `header` and `payload` JSON as written.
    func token(_ header: String, _ payload: String, signature: ((String) -> String)? = nil) -> String {
        let input = JWT.base64URL(Array(header.utf8)) + "." + JWT.base64URL(Array(payload.utf8))
        let sig = JWT.base64URL(JWT.hmac(secret, Array(input.utf8)))
        return input + "." + (signature?(sig) ?? sig)
    }

    func testJWTIsStrict() throws {
        let header = #"{"alg":"HS256","typ":"JWT"}"#
        XCTAssertEqual(try JWT.verify(token(header, #"{"sub":"a","exp":100,"nbf":1.5}"#), secret: secret, now: 50).expires, 100)
        func refused(_ t: String, _ text: String, requireExpiry: Bool = true, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try JWT.verify(t, secret: secret, now: 50, requireExpiry: requireExpiry), file: file, line: line) {
                XCTAssertTrue("\($0)".contains(text), "\($0)", file: file, line: line)
            }
        }
        refused(token(header, #"{"sub":"a","exp":"100"}"#), "exp must be a number")
        refused(token(header, #"{"sub":"a","exp":true}"#), "exp must be a number")
        refused(token(header, #"{"sub":"a","exp":100,"nbf":null}"#), "nbf must be a number")
        refused(token(header, #"{"sub":"a"}"#), "no exp")
        XCTAssertNoThrow(try JWT.verify(token(header, #"{"sub":"a"}"#), secret: secret, now: 50, requireExpiry: false))
        refused(token(#"{"alg":"HS256","crit":["exp"]}"#, #"{"sub":"a","exp":100}"#), "crit")
        refused(token(header, #"{"sub":"a","exp":100,"sub":"root"}"#), "repeats the key \"sub\"")
        refused(token(header, #"{"sub":"a","exp":100,"\u0073ub":"root"}"#), "repeats the key \"sub\"")
        refused(token(#"{"alg":"none","alg":"HS256"}"#, #"{"sub":"a","exp":100}"#), "repeats the key \"alg\"")
        refused(token(header, #"{"sub":"a","exp":100}"#) { $0 + "=" }, "canonical base64url")
        refused(token(header, #"{"sub":"a","exp":100}"#) { $0.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "+" }, "base64url")
        // The last character of a 32-byte signature carries 2 unused bits: setting them is another encoding of the same bytes.
        refused(token(header, #"{"sub":"a","exp":100}"#) { sig in
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
            let last = alphabet.firstIndex(of: sig.last!)!
            return String(sig.dropLast()) + String(alphabet[last | 3])
        }, "canonical base64url")
    }

    func testRepeatedKeysAreFoundAtAnyDepth() {
        func key(_ text: String) -> String {
            guard let parsed = try? JSONValue(parsing: text, depthLimit: 64) else { return "not JSON" }
            return parsed.firstRepeatedKey.map { "repeats " + $0 } ?? "ok"
        }
        XCTAssertEqual(key(#"{"a":1,"b":[1,{"c":2}],"d":"x\"y"}"#), "ok")
        XCTAssertEqual(key(#"{"a":1,"b":{"c":1,"c":2}}"#), "repeats c")
        XCTAssertEqual(key(#"[{"a":1},{"a":1}]"#), "ok", "the same key in two objects is not a repeat")
        XCTAssertEqual(key(#"{"\n":1,"\u000a":2}"#), "repeats \n")
        XCTAssertEqual(key(#"{"a":1"#), "not JSON")
        XCTAssertEqual(key(#"{"a" 1}"#), "not JSON")
        XCTAssertEqual(key(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)), "not JSON", "nesting is bounded")
    }

    func testMetricsLabelOnlyKnownMethodsAndEscapeValues() {
        let metrics = Metrics(knownMethods: ["/a.B/C"])
        metrics.callStarted()
        metrics.callEnded(method: "/a.B/C", status: .ok, seconds: 0.001)
        for i in 0..<1_000 {
            metrics.callStarted()
            metrics.callEnded(method: "/x\(i).Y/Z\\", status: .unimplemented, seconds: 0.001)
        }
        let text = metrics.render()
        XCTAssertTrue(text.contains(#"croupier_gateway_requests_total{method="/a.B/C",status="OK"} 1"#), text)
        XCTAssertTrue(text.contains(#"croupier_gateway_requests_total{method="unknown",status="UNIMPLEMENTED"} 1000"#), text)
        XCTAssertFalse(text.contains("/x1.Y"), "an unknown path became a series")
        XCTAssertLessThan(text.utf8.count, 10_000)
        XCTAssertEqual(PrometheusText.escape(#"a\b"c"# + "\nd"), #"a\\b\"c\nd"#)
    }
}
