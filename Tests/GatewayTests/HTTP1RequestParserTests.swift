import XCTest

@testable import Gateway

final class HTTP1RequestParserTests: XCTestCase {
    /// Everything the parser makes of `text`, fed `step` bytes at a time.
    private func parse(_ text: String, step: Int = .max) throws(HTTP1RequestParser.Refusal) -> (heads: [HTTP1RequestParser.Head], bodies: [String]) {
        var parser = HTTP1RequestParser(maxHeadBytes: 1024)
        let all = Array(text.utf8)
        var buffer: [UInt8] = []
        var at = 0
        var heads: [HTTP1RequestParser.Head] = []
        var bodies: [String] = []
        var body: [UInt8] = []
        var fed = 0
        while true {
            while let event = try parser.next(buffer, at: &at) {
                switch event {
                case .head(let h): heads.append(h)
                case .body(let r): body += buffer[r]
                case .end:
                    bodies.append(String(decoding: body, as: UTF8.self))
                    body = []
                    parser.reset()
                }
            }
            guard fed < all.count else { break }
            let n = min(step, all.count - fed)
            buffer += all[fed..<fed + n]
            fed += n
        }
        return (heads, bodies)
    }

    func testAHeadInPiecesReadsAsAHeadWhole() throws {
        let text = "\r\nPOST /pkg.Svc/M HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-Thing:  a b \r\nContent-Length: 5\r\n\r\nhello"
        for step in [1, 2, 3, 7, .max] {
            let (heads, bodies) = try parse(text, step: step)
            XCTAssertEqual(heads.count, 1, "step \(step)")
            let h = try XCTUnwrap(heads.first)
            XCTAssertEqual([h.method, h.target], ["POST", "/pkg.Svc/M"])
            XCTAssertEqual(h.field("content-type"), "application/json")
            XCTAssertEqual(h.field("x-thing"), "a b", "names lowercased, value trimmed")
            XCTAssertEqual(h.body, .fixed(5))
            XCTAssertTrue(h.keepAlive)
            XCTAssertEqual(bodies, ["hello"], "step \(step)")
        }
    }

    func testChunkedBodiesWithExtensionsAndTrailers() throws {
        let text = "POST /a/b HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
            + "5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
        for step in [1, 4, .max] {
            let (heads, bodies) = try parse(text, step: step)
            XCTAssertEqual(heads.first?.body, .chunked)
            XCTAssertEqual(heads.first?.expectsContinue, true)
            XCTAssertEqual(bodies, ["hello 0123456789"], "step \(step)")
        }
    }

    func testPipelinedRequestsComeOneAfterAnother() throws {
        let text = "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\nPOST /a/b HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi"
            + "GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, close\r\n\r\n"
        let (heads, bodies) = try parse(text)
        XCTAssertEqual(heads.map(\.target), ["/healthz", "/a/b", "/metrics"])
        XCTAssertEqual(heads.map(\.keepAlive), [true, false, false], "HTTP/1.0 and 'close' end the connection")
        XCTAssertEqual(bodies, ["", "hi", ""])
    }

    func testAmbiguousAndMalformedRequestsAreRefusedWithTheirStatus() {
        let cases: [(String, Int)] = [
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501),
            ("POST /a/b HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n", 400),
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nContent-Length: 4, 5\r\n\r\n", 400),
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nContent-Length: -1\r\n\r\n", 400),
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdXY", 400),
            ("POST /a/b HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: g\r\nX: a\r\n b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: g\nX: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: g\r\nX: a\u{1}b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost : g\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n: g\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("GET  / HTTP/1.1\r\nHost: g\r\n\r\n", 400),
            ("GET http://x/ HTTP/1.1\r\nHost: g\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\nHost: g\r\n\r\n", 505),
            ("GET / FTP/1.1\r\nHost: g\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: g\r\nExpect: 200-ok\r\n\r\n", 417),
            ("GET / HTTP/1.1\r\nHost: g\r\nX: " + String(repeating: "a", count: 2000) + "\r\n\r\n", 431),
            ("GET / HTTP/1.1\r\nHost: g\r\nX: " + String(repeating: "a", count: 2000), 431),
        ]
        for (text, status) in cases {
            do {
                _ = try parse(text)
                XCTFail("accepted: \(text.prefix(80))")
            } catch {
                XCTAssertEqual(error.status, status, "\(text.prefix(80)): \(error.reason)")
            }
        }
    }

    func testOptionsStarIsAnOriginFormExceptionOnlyForOptions() throws {
        XCTAssertEqual(try parse("OPTIONS * HTTP/1.1\r\nHost: g\r\n\r\n").heads.first?.target, "*")
        XCTAssertThrowsError(try parse("GET * HTTP/1.1\r\nHost: g\r\n\r\n"))
    }
}
