import Wire
import XCTest

/// An independent Wire client in Python, written from docs/wire.md alone,
/// calls a real WireServer: if the document were not enough, this would fail.
final class WirePythonClientTests: XCTestCase {
    func testPythonClientFromTheSpecInteroperates() async throws {
        let server = WireServer(name: "test", services: [InteropTestService()], secret: WireTransportTests.secret)
        let port = try server.start(port: 0)
        let secret = String(decoding: WireTransportTests.secret, as: UTF8.self)
        let output = try await Task.detached {
            try runPython("Tests/Conformance/wire_client.py", [String(port), secret])
        }.value
        XCTAssertTrue(output.contains("9 passed, 0 failed"), output)
        await server.shutdown()
    }
}
