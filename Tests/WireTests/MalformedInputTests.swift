import Wire
import XCTest

typealias Node = Croupier_Codectest_V1_Node

/// Every way an encoding can be malformed ends in a typed error, never a
/// trap, and never an allocation sized by a hostile length.
final class MalformedInputTests: XCTestCase {
    private func assertRejects(
        _ bytes: [UInt8], _ expected: ProtoDecodingError, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try KitchenSink(serializedBytes: bytes), file: file, line: line) { error in
            XCTAssertEqual(error as? ProtoDecodingError, expected, file: file, line: line)
        }
    }

    func testTruncatedVarint() {
        assertRejects([0x28, 0x80], .truncated)  // f_int32, continuation bit then end
        assertRejects([0x28], .truncated)  // tag without a value
        assertRejects([0xA8], .truncated)  // tag itself cut short
    }

    func testOverlongVarint() {
        assertRejects([0x28] + [UInt8](repeating: 0xFF, count: 10) + [0x01], .overlongVarint)  // 11 bytes
        assertRejects([0x28] + [UInt8](repeating: 0xFF, count: 9) + [0x02], .overlongVarint)  // 10th byte > 1
        // Ten bytes whose last carries only bit 63 is valid (a negative int64).
        XCTAssertEqual(try KitchenSink(serializedBytes: [0x18] + [UInt8](repeating: 0xFF, count: 9) + [0x01]).fInt64, -1)
    }

    func testInvalidWireTypes() {
        assertRejects([0x0E, 0x00], .invalidWireType(6))
        assertRejects([0x0F, 0x00], .invalidWireType(7))
    }

    func testGroupsRejected() {
        assertRejects([0x0B, 0x0C], .groupsNotSupported(fieldNumber: 1))
        assertRejects([0x0C], .groupsNotSupported(fieldNumber: 1))
    }

    func testInvalidFieldNumbers() {
        assertRejects([0x00, 0x00], .invalidFieldNumber(0))
        assertRejects([0x02, 0x00], .invalidFieldNumber(0))
        // 2^29 is one past the largest field number.
        assertRejects([0x80, 0x80, 0x80, 0x80, 0x10, 0x00], .invalidFieldNumber(1 << 29))
    }

    func testLengthPastEnd() {
        assertRejects([0x4A, 0x05, 0x61], .lengthOutOfBounds(length: 5, available: 1))  // f_string
        // A nested length may not run past its enclosing message.
        assertRejects([0x8A, 0x01, 0x03, 0x12, 0x05, 0x61], .lengthOutOfBounds(length: 5, available: 1))
    }

    func testHostileLengthAllocatesNothing() {
        // f_bytes claiming 2^63 bytes: rejected before any allocation.
        let huge: [UInt8] = [0x52, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]
        assertRejects(huge, .lengthOutOfBounds(length: UInt64(Int64.max), available: 0))
        // A packed fixed64 run claiming more than is present.
        assertRejects([0xD2, 0x01, 0xF0, 0xFF, 0x03], .lengthOutOfBounds(length: 65_520, available: 0))
    }

    func testTruncatedFixedWidth() {
        assertRejects([0x09, 0x00, 0x00, 0x00], .truncated)  // f_double, 3 of 8 bytes
        assertRejects([0x3D, 0x00], .truncated)  // f_fixed32, 1 of 4 bytes
    }

    func testPackedFixedWidthMustBeWholeElements() {
        assertRejects([0xDA, 0x01, 0x03, 0x01, 0x02, 0x03], .invalidPackedLength(fieldNumber: 27))
    }

    func testInvalidUTF8InString() {
        assertRejects([0x4A, 0x02, 0xC3, 0x28], .invalidUTF8(fieldNumber: 9))
        assertRejects([0x4A, 0x01, 0xFF], .invalidUTF8(fieldNumber: 9))
    }

    func testNestingLimit() throws {
        func chain(_ depth: Int) -> [UInt8] {
            var node = Node.with { $0.value = 1 }
            for _ in 0..<depth { node = Node.with { $0.child = node } }
            return node.serializedBytes()
        }
        XCTAssertNoThrow(try Node(serializedBytes: chain(ProtoReader.defaultRecursionLimit)))
        XCTAssertThrowsError(try Node(serializedBytes: chain(ProtoReader.defaultRecursionLimit + 1))) {
            XCTAssertEqual($0 as? ProtoDecodingError, .recursionLimitExceeded(limit: 100))
        }
        // The limit is the caller's to choose.
        let shallow = chain(5).withUnsafeBytes { try? Node(buffer: $0, recursionLimit: 4) }
        XCTAssertNil(shallow)
    }

    func testMalformedUnknownFieldIsStillRejected() {
        // Field 1000 is unknown to KitchenSink, but its length runs past the end.
        assertRejects([0xC2, 0x3E, 0x09, 0x00], .lengthOutOfBounds(length: 9, available: 1))
    }

    func testWrongWireTypeForKnownFieldIsKeptAsUnknown() throws {
        // f_int32 (5) sent as fixed32: not an error, kept verbatim like the reference implementations.
        let bytes: [UInt8] = [0x2D, 0x01, 0x00, 0x00, 0x00]
        let m = try KitchenSink(serializedBytes: bytes)
        XCTAssertEqual(m.fInt32, 0)
        XCTAssertEqual(m.unknownFields.bytes, bytes)
        XCTAssertEqual(m.serializedBytes(), bytes)
    }

    func testRepeatedScalarsAcceptPackedAndUnpacked() throws {
        // r_int32 (25): one unpacked element, then a packed run of two.
        let m = try KitchenSink(serializedBytes: [0xC8, 0x01, 0x07, 0xCA, 0x01, 0x02, 0x08, 0x09])
        XCTAssertEqual(m.rInt32, [7, 8, 9])
        // Re-encoded packed, as proto3 requires.
        XCTAssertEqual(m.serializedBytes(), [0xCA, 0x01, 0x03, 0x07, 0x08, 0x09])
    }

    func testSingularMessageOccurringTwiceMerges() throws {
        // f_message {id: 1} then f_message {label: "x"} → {id: 1, label: "x"}.
        let m = try KitchenSink(serializedBytes: [0x8A, 0x01, 0x02, 0x08, 0x01, 0x8A, 0x01, 0x03, 0x12, 0x01, 0x78])
        XCTAssertEqual(m.fMessage, Inner.with { $0.id = 1; $0.label = "x" })
    }

    func testOpenEnumKeepsUnknownValue() throws {
        let m = try KitchenSink(serializedBytes: [0x80, 0x01, 0x2A])  // f_enum = 42
        XCTAssertEqual(m.fEnum, .unrecognized(42))
        XCTAssertEqual(m.serializedBytes(), [0x80, 0x01, 0x2A])
    }
}
