import CNGHTTP2
import COpenSSL
import CLibPQ
import CSQLite
import XCTest

/// The C libraries the design card allows are reachable through their
/// systemLibrary targets: headers found, symbols linked, versions sane.
final class SystemLibraryTests: XCTestCase {
    func testNGHTTP2Links() {
        let info = nghttp2_version(0)!
        XCTAssertGreaterThanOrEqual(info.pointee.version_num, 0x01_2A_00)  // 1.42+
    }

    func testOpenSSLLinks() {
        XCTAssertGreaterThanOrEqual(OpenSSL_version_num(), 0x3000_0000)  // 3.x
        // HMAC-SHA256 of "" under key "key", a published test vector.
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let key = Array("key".utf8)
        _ = HMAC(EVP_sha256(), key, Int32(key.count), nil, 0, &out, &length)
        XCTAssertEqual(out.map { String(format: "%02x", $0) }.joined(),
            "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0")
    }

    func testSQLiteLinks() {
        XCTAssertGreaterThanOrEqual(sqlite3_libversion_number(), 3_035_000)  // 3.35+: RETURNING
        XCTAssertEqual(sqlite3_threadsafe(), 1)
    }

    func testLibPQLinks() {
        XCTAssertGreaterThanOrEqual(PQlibVersion(), 120_000)  // 12+
        XCTAssertEqual(PQisthreadsafe(), 1)
    }
}
