import XCTest

@testable import Wire

/// The client's hand-written CALL_START encoding is `croupier.wire.v1.CallStart`:
/// the generated message reads what it writes, and it reads what the generated message writes.
final class CallStartEncodingTests: XCTestCase {
    func testAgreesWithTheGeneratedMessageBothWays() throws {
        var metadata = Metadata()
        metadata.add("x-correlation-id", "corr-1")
        metadata.add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        metadata.add("grpc-trace-bin", binary: [0, 1, 2, 255])
        metadata.add("empty", "")
        metadata.add("long", String(repeating: "v", count: 300))  // a two-byte length
        let method = MethodDescriptor(service: "a.B", method: "C", kind: .unary)
        for timeout: UInt64? in [nil, 5, 1 << 40] {
            let written = CallStartEncoding(method, timeoutMicros: timeout, metadata: metadata)
            let bytes = written.serializedBytes()
            XCTAssertEqual(bytes.count, written.encodedSize)
            let generated = try Croupier_Wire_V1_CallStart(serializedBytes: bytes)
            XCTAssertEqual(generated.method, "/a.B/C")
            XCTAssertEqual(generated.timeoutMicros, timeout ?? 0)
            XCTAssertEqual(Metadata(wire: generated.metadata), metadata)
            let back = try CallStartEncoding(serializedBytes: generated.serializedBytes())
            XCTAssertEqual(back, written)
        }
        let bare = CallStartEncoding(method, timeoutMicros: nil, metadata: Metadata())
        XCTAssertEqual(try Croupier_Wire_V1_CallStart(serializedBytes: bare.serializedBytes()), .with { $0.method = "/a.B/C" })
    }
}
