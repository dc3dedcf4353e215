import Foundation
import Wire
import XCTest

typealias KitchenSink = Croupier_Codectest_V1_KitchenSink
typealias Inner = Croupier_Codectest_V1_Inner

/// Conformance against an independent implementation: Python protobuf (upb).
///
/// Python encodes a message with known values and hundreds of random
/// messages; Swift must decode the known one to exactly its own spelling of
/// those values, re-encode every message byte for byte, and keep fields it
/// does not know. Python then checks what Swift wrote.
final class CodecConformanceTests: XCTestCase {
    func testAgainstPythonProtobuf() throws {
        let dir = try makeTemporaryDirectory("codec-conformance")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try runPython("Tests/Conformance/codec_reference.py", ["emit", dir.path])

        // 1. Field for field: Python's encoding of EXPECTED decodes to Swift's expected value.
        let fixedBytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent("fixed_kitchen.bin")))
        let fixed = try KitchenSink(serializedBytes: fixedBytes)
        let expected = Self.expectedKitchenSink()
        XCTAssertEqual(fixed, expected)
        XCTAssertEqual(fixed.fSint64, -4_611_686_018_427_387_904)
        XCTAssertEqual(fixed.rEnum, [.red, .blue, .unrecognized(9)])
        XCTAssertEqual(fixed.serializedBytes(), fixedBytes, "re-encoding is not byte-identical")
        XCTAssertEqual(expected.serializedBytes(), fixedBytes, "Swift's own encoding differs from Python's")
        try Data(expected.serializedBytes()).write(to: dir.appendingPathComponent("swift_fixed_kitchen.bin"))

        // 2. Every random message re-encodes byte for byte; unknown fields survive.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("random_") }
        XCTAssertGreaterThan(files.count, 400)
        for name in files {
            let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent(name)))
            let typeName = name.split(separator: ".").dropFirst().dropLast().joined(separator: ".")
            guard let reencode = Self.roundTrips[typeName] else { return XCTFail("no Swift type for \(typeName)") }
            let again = try reencode(bytes)
            if again != bytes {
                let at = zip(again, bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(again.count, bytes.count)
                XCTFail("\(name) did not re-encode byte for byte: \(again.count) vs \(bytes.count) bytes, first difference at \(at)")
            }
            if typeName == KitchenSink.protoMessageName {
                let subset = try Croupier_Codectest_V1_KitchenSinkSubset(serializedBytes: bytes)
                let out = dir.appendingPathComponent(name.replacingOccurrences(of: "random_", with: "swift_subset_"))
                try Data(subset.serializedBytes()).write(to: out)
            }
        }

        // 3. Python decodes what Swift wrote.
        let report = try runPython("Tests/Conformance/codec_reference.py", ["verify", dir.path])
        XCTAssertTrue(report.contains(": OK"), report)
    }

    static let roundTrips: [String: @Sendable ([UInt8]) throws -> [UInt8]] = [
        KitchenSink.protoMessageName: { try KitchenSink(serializedBytes: $0).serializedBytes() },
        Grpc_Testing_SimpleRequest.protoMessageName: { try Grpc_Testing_SimpleRequest(serializedBytes: $0).serializedBytes() },
        Grpc_Testing_SimpleResponse.protoMessageName: { try Grpc_Testing_SimpleResponse(serializedBytes: $0).serializedBytes() },
        Grpc_Testing_StreamingOutputCallRequest.protoMessageName: {
            try Grpc_Testing_StreamingOutputCallRequest(serializedBytes: $0).serializedBytes()
        },
        Grpc_Testing_StreamingInputCallRequest.protoMessageName: {
            try Grpc_Testing_StreamingInputCallRequest(serializedBytes: $0).serializedBytes()
        },
        Grpc_Testing_TestOrcaReport.protoMessageName: { try Grpc_Testing_TestOrcaReport(serializedBytes: $0).serializedBytes() },
        Grpc_Health_V1_HealthListResponse.protoMessageName: {
            try Grpc_Health_V1_HealthListResponse(serializedBytes: $0).serializedBytes()
        },
        Grpc_Reflection_V1_ServerReflectionRequest.protoMessageName: {
            try Grpc_Reflection_V1_ServerReflectionRequest(serializedBytes: $0).serializedBytes()
        },
        Grpc_Reflection_V1_ServerReflectionResponse.protoMessageName: {
            try Grpc_Reflection_V1_ServerReflectionResponse(serializedBytes: $0).serializedBytes()
        },
    ]

    /// The same values as EXPECTED in codec_reference.py, spelled in Swift.
    static func expectedKitchenSink() -> KitchenSink {
        KitchenSink.with {
            $0.fDouble = -1.5e300
            $0.fFloat = 3.25
            $0.fInt64 = .min
            $0.fUint64 = .max
            $0.fInt32 = -42
            $0.fFixed64 = 1_234_567_890_123
            $0.fFixed32 = .max
            $0.fBool = true
            $0.fString = "héllo, 世界 🎲"
            $0.fBytes = [0x00, 0x01, 0xFE, 0xFF]
            $0.fUint32 = 4_000_000_000
            $0.fSfixed32 = .min
            $0.fSfixed64 = -77
            $0.fSint32 = -1
            $0.fSint64 = -4_611_686_018_427_387_904
            $0.fEnum = .blue
            $0.fMessage = Inner.with { $0.id = 7; $0.label = "inner"; $0.children = [Inner.with { $0.id = 8 }] }
            $0.rDouble = [0.5, -0.0, 1e-300]
            $0.rFloat = [1.5, -2.0]
            $0.rInt64 = [-1, 0, 1]
            $0.rUint64 = [0, 300]
            $0.rInt32 = [-1, 2, 150]
            $0.rFixed64 = [1, 2]
            $0.rFixed32 = [3]
            $0.rBool = [true, false, true]
            $0.rString = ["a", "", "ü"]
            $0.rBytes = [[], [1, 2]]
            $0.rUint32 = [1, .max]
            $0.rSfixed32 = [-5]
            $0.rSfixed64 = [-6]
            $0.rSint32 = [-7, 7]
            $0.rSint64 = [-8]
            $0.rEnum = [.red, .blue, .unrecognized(9)]
            $0.rMessage = [Inner.with { $0.id = 1 }, Inner()]
            $0.rUnpackedInt32 = [5, -5]
            $0.oInt32 = 0
            $0.oString = ""
            $0.oEnum = .unspecified
            $0.mStringInt32 = ["b": 2, "a": 1, "": 0]
            $0.mInt64String = [-3: "minus three", 10: "ten"]
            $0.mBoolBytes = [true: [0xFF], false: []]
            $0.mUint32Inner = [1: Inner.with { $0.id = 1 }, 0: Inner()]
            $0.mSint64Color = [-1: .green]
            $0.mFixed32Double = [7: 0.25]
            $0.mStringSelf = ["k": KitchenSink.with { $0.fInt32 = 1 }]
            $0.cMessage = Inner.with { $0.label = "chosen" }
            $0.fSelf = KitchenSink.with { $0.fSelf = KitchenSink.with { $0.fString = "two levels down" } }
            $0.default = "keyword"
            $0.largeFieldNumber = 1
        }
    }
}
