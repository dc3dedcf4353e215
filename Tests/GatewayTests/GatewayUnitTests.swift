@testable import Gateway
import Wire
import XCTest

/// The gateway's pure parts: tokens, request headers, routing, status encoding, rate buckets, correlation ids.
final class GatewayUnitTests: XCTestCase {
    let secret = Array("unit-secret-0123456789".utf8)

    func testTokenRoundTripAndRefusals() throws {
        let claims = JWT.Claims(subject: "alice", permissions: ["a", "b"], roles: ["staff"], expires: 2_000, notBefore: 1_000)
        let token = JWT.sign(claims, secret: secret)
        XCTAssertEqual(try JWT.verify(token, secret: secret, now: 1_500), claims)
        XCTAssertThrowsError(try JWT.verify(token, secret: secret, now: 2_000)) { XCTAssertTrue("\($0)".contains("expired")) }
        XCTAssertThrowsError(try JWT.verify(token, secret: secret, now: 999)) { XCTAssertTrue("\($0)".contains("not valid before")) }
        XCTAssertThrowsError(try JWT.verify(token, secret: Array("other".utf8), now: 1_500)) { XCTAssertTrue("\($0)".contains("signature")) }
        let parts = token.split(separator: ".")
        let none = JWT.base64URL(Array(#"{"alg":"none"}"#.utf8)) + "." + parts[1] + "."
        XCTAssertThrowsError(try JWT.verify(none, secret: secret, now: 1_500)) { XCTAssertTrue("\($0)".contains("none")) }
        // A payload changed after signing.
        let forged = parts[0] + "." + JWT.base64URL(Array(#"{"sub":"root","perms":["*"]}"#.utf8)) + "." + parts[2]
        XCTAssertThrowsError(try JWT.verify(forged, secret: secret, now: 1_500))
        XCTAssertThrowsError(try JWT.verify("garbage", secret: secret, now: 0))
    }

    /// A remembered token is still checked against the clock on every use;
    /// refused tokens are never remembered; the memory stays bounded.
    func testTokenVerifierRemembersOnlyValidTokensAndStillExpiresThem() throws {
        let verifier = TokenVerifier(secret: secret, capacity: 3)
        let claims = JWT.Claims(subject: "alice", permissions: ["a"], expires: 2_000, notBefore: 1_000)
        let token = JWT.sign(claims, secret: secret)
        XCTAssertEqual(try verifier.claims(token, now: 1_500), claims)
        XCTAssertEqual(try verifier.claims(token, now: 1_600), claims)
        XCTAssertEqual(verifier.count, 1)
        XCTAssertThrowsError(try verifier.claims(token, now: 2_000)) { XCTAssertTrue("\($0)".contains("expired")) }
        XCTAssertThrowsError(try verifier.claims(token, now: 999)) { XCTAssertTrue("\($0)".contains("not valid before")) }
        let forged = JWT.sign(claims, secret: Array("other".utf8))
        XCTAssertThrowsError(try verifier.claims(forged, now: 1_500)) { XCTAssertTrue("\($0)".contains("signature")) }
        XCTAssertThrowsError(try verifier.claims(forged, now: 1_500))
        XCTAssertEqual(verifier.count, 1)
        for i in 0..<10 { _ = try verifier.claims(JWT.sign(JWT.Claims(subject: "u\(i)", permissions: [], expires: 10), secret: secret), now: 0) }
        XCTAssertEqual(verifier.count, 3)
    }

    func testGRPCTimeoutParsing() {
        XCTAssertEqual(GRPCRequest.parseTimeout("1S"), .seconds(1))
        XCTAssertEqual(GRPCRequest.parseTimeout("250m"), .milliseconds(250))
        XCTAssertEqual(GRPCRequest.parseTimeout("2H"), .seconds(7200))
        XCTAssertEqual(GRPCRequest.parseTimeout("99999999n"), .nanoseconds(99_999_999))
        for bad in ["", "S", "1", "123456789S", "1s", "-1S", "1.5S"] { XCTAssertNil(GRPCRequest.parseTimeout(bad), bad) }
    }

    func testRequestHeadersBecomeMetadataWithoutReservedOrSpoofedKeys() throws {
        let request = try GRPCRequest(headers: [
            (":method", "POST"), (":path", "/pkg.Svc/Do"), ("content-type", "application/grpc+proto"), ("te", "trailers"),
            ("grpc-timeout", "5S"), ("authorization", "Bearer x"), ("x-croupier-principal", "admin"), ("x-custom", "v"),
            ("trace-bin", "AAEC"), ("x-correlation-id", "abcdefgh"),
        ])
        XCTAssertEqual(request.service, "pkg.Svc")
        XCTAssertEqual(request.method, "Do")
        XCTAssertEqual(request.timeout, .seconds(5))
        XCTAssertEqual(request.metadata["x-custom"], "v")
        XCTAssertEqual(request.metadata.values("trace-bin"), [.binary([0, 1, 2])])
        XCTAssertNil(request.metadata["x-croupier-principal"])
        XCTAssertNil(request.metadata["authorization"])
        XCTAssertEqual(request.correlationID, "abcdefgh")
    }

    func testRequestRejections() {
        func rejection(_ headers: [(String, String)]) -> String {
            do {
                _ = try GRPCRequest(headers: headers)
                return "accepted"
            } catch {
                switch error {
                case .http(let status, _): return "http \(status)"
                case .status(let e): return e.code.name
                }
            }
        }
        let base = [(":method", "POST"), (":path", "/a.B/C")]
        XCTAssertEqual(rejection(base + [("content-type", "text/plain")]), "http 415")
        XCTAssertEqual(rejection(base + [("content-type", "application/grpc-web+proto")]), "accepted", "gRPC-Web")
        XCTAssertEqual(rejection(base + [("content-type", "application/grpc-web-text")]), "accepted", "gRPC-Web, base64")
        XCTAssertEqual(rejection(base + [("content-type", "application/grpc-webby")]), "http 415")
        XCTAssertEqual(rejection(base), "http 415")
        XCTAssertEqual(rejection(base + [("content-type", "application/json; charset=utf-8")]), "accepted", "a JSON call")
        XCTAssertEqual(rejection(base + [("content-type", "application/json"), ("connect-timeout-ms", "soon")]), "INVALID_ARGUMENT")
        XCTAssertEqual(rejection(base + [("content-type", "application/json"), ("content-encoding", "gzip")]), "UNIMPLEMENTED")
        XCTAssertEqual(rejection([(":method", "GET"), (":path", "/a.B/C"), ("content-type", "application/grpc")]), "http 405")
        XCTAssertEqual(rejection(base + [("content-type", "application/grpc"), ("grpc-encoding", "gzip")]), "UNIMPLEMENTED")
        XCTAssertEqual(rejection(base + [("content-type", "application/grpc"), ("grpc-timeout", "soon")]), "INTERNAL")
        for path in ["/nomethod", "/", "//C", "/a.B/", "/a.B/C/D", "/a.B//C", "a.B/C"] {
            XCTAssertEqual(rejection([(":method", "POST"), (":path", path), ("content-type", "application/grpc")]), "UNIMPLEMENTED", path)
        }
        XCTAssertEqual(rejection(base + [("content-type", "application/grpc")]), "accepted")
    }

    func testStatusMessagesArePercentEncoded() {
        XCTAssertEqual(GRPCResponseHeaders.percentEncode("ok 100%"), "ok 100%25")
        XCTAssertEqual(GRPCResponseHeaders.percentEncode("\t\n☺"), "%09%0A%E2%98%BA")
        let fields = GRPCResponseHeaders.fields({
            var m = Metadata()
            m.add("x-b-bin", binary: [0xAB, 0xAB, 0xAB])
            m.add("bad key", "dropped")
            m.add("x-ctl", "line\nbreak")
            return m
        }())
        XCTAssertEqual(fields.map(\.0), ["x-b-bin"])
        XCTAssertEqual(fields.first?.1, "q6ur")
    }

    /// The one rate-limit model (`SlidingWindow`): at most `limit` calls in
    /// any period, and the hint is exact: the call made at the hinted moment
    /// passes, one a millisecond earlier does not.
    func testRateLimitIsASlidingWindowWithATrueHintAndForgetsIdleCallers() {
        let limiter = RateLimiter(rules: [RateLimitRule(method: "/a.B/C", limit: 2, periodSeconds: 1)])
        XCTAssertNil(limiter.take(principal: "p", method: "/a.B/C", nowMillis: 100_000))
        XCTAssertNil(limiter.take(principal: "p", method: "/a.B/C", nowMillis: 100_400))
        let wait = limiter.take(principal: "p", method: "/a.B/C", nowMillis: 100_500)
        XCTAssertEqual(wait, 500, "the first call leaves the window at 101,000")
        XCTAssertNil(limiter.take(principal: "q", method: "/a.B/C", nowMillis: 100_500), "windows are per principal")
        XCTAssertNil(limiter.take(principal: "p", method: "/other", nowMillis: 100_500), "methods without a rule are unlimited")
        XCTAssertNotNil(limiter.take(principal: "p", method: "/a.B/C", nowMillis: 100_500 + 499), "a millisecond before the hint")
        XCTAssertNil(limiter.take(principal: "p", method: "/a.B/C", nowMillis: 100_500 + 500), "at the hint")
        XCTAssertEqual(limiter.take(principal: "p", method: "/a.B/C", nowMillis: 101_001), 399, "now the 100,400 call must leave")
        // 100,000 principals once each; a period later their windows are empty and are dropped.
        for i in 0..<100_000 { _ = limiter.take(principal: "user\(i)", method: "/a.B/C", nowMillis: 200_000) }
        XCTAssertGreaterThanOrEqual(limiter.bucketCount, 100_000)
        _ = limiter.take(principal: "late", method: "/a.B/C", nowMillis: 202_000)
        XCTAssertLessThanOrEqual(limiter.bucketCount, 2)
        // The model itself: a window of 3 in 60 s.
        let w = SlidingWindow(limit: 3, windowMillis: 60_000)
        XCTAssertNil(w.retryAfter(recent: [1_000, 2_000], now: 3_000))
        XCTAssertEqual(w.retryAfter(recent: [1_000, 2_000, 3_000], now: 3_000), 58_000)
        XCTAssertNotNil(w.retryAfter(recent: [1_000, 2_000, 3_000], now: 60_999))
        XCTAssertNil(w.retryAfter(recent: [1_000, 2_000, 3_000], now: 61_000))
    }

    /// Every path resolves as before the routes were precomputed: described
    /// methods to their owner (gateway or backend, by service or package),
    /// unknown methods of known services and unknown packages to
    /// UNIMPLEMENTED, and so are services no descriptor names, even in a
    /// backend's package (the gateway cannot know their kind or permission).
    func testRouterResolvesEachKindOfPath() throws {
        let local = InProcessChannel(services: []), games = InProcessChannel(services: []), ledger = InProcessChannel(services: [])
        let health = MethodDescriptor(service: "grpc.health.v1.Health", method: "Check", kind: .unary)
        let open = MethodDescriptor(service: "games.v1.Tables", method: "Open", kind: .unary)
        let watch = MethodDescriptor(service: "games.v1.Tables", method: "Watch", kind: .serverStreaming)
        let post = MethodDescriptor(service: "acct.Ledger", method: "Post", kind: .unary)
        let router = Router(
            local: ["grpc.health.v1.Health": local],
            backends: [
                (.init(name: "games", host: "h", port: 1, packages: ["games.v1"]), games),
                (.init(name: "ledger", host: "h", port: 2, packages: ["acct.Ledger"]), ledger),  // named for the service itself
            ],
            methods: [health, open, watch, post])
        func route(_ path: String) -> String {
            let parts = path.dropFirst().split(separator: "/")
            do {
                let t = try router.resolve(service: String(parts[0]), method: String(parts[1]), path: path)
                return "\(t.backend) \(t.method.path) \(t.method.kind)"
            } catch {
                return (error as? RPCError)?.code.name ?? "\(error)"
            }
        }
        XCTAssertEqual(route("/grpc.health.v1.Health/Check"), "gateway /grpc.health.v1.Health/Check unary")
        XCTAssertEqual(route("/grpc.health.v1.Health/Watch"), "UNIMPLEMENTED")
        XCTAssertEqual(route("/games.v1.Tables/Open"), "games /games.v1.Tables/Open unary")
        XCTAssertEqual(route("/games.v1.Tables/Watch"), "games /games.v1.Tables/Watch serverStreaming")
        XCTAssertEqual(route("/games.v1.Tables/Close"), "UNIMPLEMENTED")
        XCTAssertEqual(route("/acct.Ledger/Post"), "ledger /acct.Ledger/Post unary")
        XCTAssertEqual(route("/games.v1.Dealers/Deal"), "UNIMPLEMENTED")
        XCTAssertEqual(route("/other.v1.Thing/Do"), "UNIMPLEMENTED")
    }

    func testCorrelationIDs() {
        XCTAssertEqual(CorrelationID.accept("abc-DEF_1.2"), "abc-DEF_1.2")
        for bad in [nil, "short", "with space 123", String(repeating: "x", count: 129), "emoji☺☺☺☺☺"] {
            let made = CorrelationID.accept(bad)
            XCTAssertNotEqual(made, bad)
            XCTAssertEqual(made.count, 32)
        }
        // New ids: one random prefix per process, then a counter; all distinct and well-formed.
        let ids = (0..<1_000).map { _ in CorrelationID.make() }
        XCTAssertEqual(Set(ids).count, ids.count)
        XCTAssertEqual(Set(ids.map { $0.prefix(16) }).count, 1)
        XCTAssertTrue(ids.allSatisfy { $0.utf8.count == 32 && $0.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) } })
        XCTAssertTrue(ids.allSatisfy(CorrelationID.isWellFormed))
    }

    func testAccessPolicy() {
        let policy = AccessPolicy(publicServices: ["pub.S"], permissions: ["/pub.S/Guarded": "g", "priv.S": "p", "/priv.S/Special": "s"])
        XCTAssertEqual(policy.requirement(path: "/pub.S/Open", service: "pub.S"), .none)
        XCTAssertEqual(policy.requirement(path: "/pub.S/Guarded", service: "pub.S"), .permission("g"))
        XCTAssertEqual(policy.requirement(path: "/priv.S/Any", service: "priv.S"), .permission("p"))
        XCTAssertEqual(policy.requirement(path: "/priv.S/Special", service: "priv.S"), .permission("s"))
        XCTAssertEqual(policy.requirement(path: "/other.S/X", service: "other.S"), .token)
    }
}
