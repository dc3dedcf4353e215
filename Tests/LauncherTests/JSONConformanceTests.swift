import Foundation
import XCTest

/// `croupier json` against Python protobuf's json_format, on every message
/// in protos/, both ways, with edge values and the refusals the mapping
/// requires (Tests/Conformance/json_conformance.py).
final class JSONConformanceTests: XCTestCase {
    func testTheProto3JSONMappingAgreesWithJsonFormat() throws {
        let (status, out) = try runToEnd("/usr/bin/env", ["python3", repositoryRoot.path + "/Tests/Conformance/json_conformance.py", croupier])
        print(out.split(separator: "\n").first { $0.hasPrefix("json conformance") } ?? "no summary")
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains(", 0 mismatches"), out)
    }
}
