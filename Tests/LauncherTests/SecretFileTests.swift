import Foundation
import Synchronization
import Wire
import XCTest

/// Secrets fail closed: an empty or short secret, from a file or the
/// environment, stops the start naming where it came from; a generated
/// secret is written whole before anyone can read it; Wire peers holding an
/// empty secret never authenticate.
final class SecretFileTests: XCTestCase {
    private let backendPorts = [
        "CROUPIER_INTEROP_PORT": "1", "CROUPIER_LOYALTY_PORT": "1", "CROUPIER_GAMES_PORT": "1", "CROUPIER_RGS_PORT": "1",
        "CROUPIER_STAGING_PORT": "1", "CROUPIER_GATEWAY_ADDR": "127.0.0.1:0",
    ]

    func testEmptyOrShortSecretsStopTheStart() throws {
        for (file, content) in [("jwt-secret", ""), ("jwt-secret", "short\n"), ("internal-secret", ""), ("internal-secret", "0123456789")] {
            let dir = try makeTemporaryDirectory("secrets").path
            try content.write(toFile: dir + "/" + file, atomically: true, encoding: .utf8)
            var env = backendPorts
            env["CROUPIER_DATA_DIR"] = dir
            env["CROUPIER_JWT_SECRET"] = nil
            env["CROUPIER_INTERNAL_SECRET"] = nil
            for command in [["serve", "gateway"], ["token", "--sub", "x"], ["serve", "interop"]] {
                let (status, output) = try runToEnd(croupier, command, environment: env)
                XCTAssertNotEqual(status, 0, "\(command) started with a \(content.isEmpty ? "empty" : "short") \(file)")
                XCTAssertTrue(output.contains(dir + "/" + file), "\(command): \(output)")
            }
        }
        let dir = try makeTemporaryDirectory("secrets").path
        for name in ["CROUPIER_JWT_SECRET", "CROUPIER_INTERNAL_SECRET"] {
            let (status, output) = try runToEnd(croupier, ["token", "--sub", "x"], environment: ["CROUPIER_DATA_DIR": dir, name: "tooshort"])
            XCTAssertNotEqual(status, 0, output)
            XCTAssertTrue(output.contains(name), output)
        }
    }

    /// Eight processes starting at once in a fresh data directory agree on
    /// one secret, written whole (64 hex characters, mode 0600), and leave no
    /// temporary file behind.
    func testAGeneratedSecretIsWrittenWholeAndSharedByRacingStarts() throws {
        let dir = try makeTemporaryDirectory("secrets-race").path
        let group = DispatchGroup()
        let tokens = Mutex<[String]>([])
        for _ in 0..<8 {
            DispatchQueue.global().async(group: group) {
                let result = try? runToEnd(croupier, ["token", "--sub", "same", "--ttl", "600"], environment: ["CROUPIER_DATA_DIR": dir])
                tokens.withLock { $0.append(result.map { "\($0.0) \($0.1)" } ?? "failed") }
            }
        }
        group.wait()
        let secret = try String(contentsOfFile: dir + "/jwt-secret", encoding: .utf8)
        XCTAssertEqual(secret.count, 64)
        XCTAssertTrue(secret.allSatisfy(\.isHexDigit))
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/jwt-secret")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp") }, [])
        // Every token verifies with the one secret on disk (checked by Python's hmac, an independent HS256).
        let list = tokens.withLock { $0 }
        XCTAssertEqual(list.count, 8)
        XCTAssertTrue(list.allSatisfy { $0.hasPrefix("0 ") }, "\(list)")
        let script = """
            import base64, hashlib, hmac, sys
            secret = sys.argv[1].encode()
            for t in sys.argv[2:]:
                h, p, s = t.split(".")
                want = base64.urlsafe_b64encode(hmac.new(secret, (h + "." + p).encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
                assert s == want, t
            print("verified", len(sys.argv) - 2)
            """
        let (status, out) = try runToEnd("/usr/bin/env", ["python3", "-c", script, secret] + list.map { $0.dropFirst(2).trimmingCharacters(in: .whitespacesAndNewlines) })
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("verified 8"), out)
    }

    func testWirePeersWithAnEmptySecretNeverAuthenticate() async throws {
        let server = WireServer(name: "empty", services: [InteropTestService()], secret: [])
        let port = try server.start(port: 0)
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: [], peerName: "empty")
        do {
            _ = try await Grpc_Testing_TestService.Client(channel: channel).emptyCall(Grpc_Testing_Empty())
            XCTFail("a call authenticated with an empty secret")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .unauthenticated, e.message)
        }
        channel.close()
        await server.shutdown(timeout: .seconds(1))
    }
}
