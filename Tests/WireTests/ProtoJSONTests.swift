import Wire
import XCTest

/// The proto3 JSON mapping on generated messages, and the JSON reader's
/// refusals. (Every message in protos/ is checked against Python's
/// json_format by Tests/Conformance/json_conformance.py.)
final class ProtoJSONTests: XCTestCase {
    let json = ProtoJSON(schema: try! ProtoSchema(compiled: [.grpc_testing_messages, .grpc_testing_empty]))

    func testAGeneratedMessageRoundTripsThroughCanonicalJSON() throws {
        var request = Grpc_Testing_SimpleRequest()
        request.responseSize = 314_159
        request.payload = Grpc_Testing_Payload()
        request.payload!.body = [0, 255]
        request.fillUsername = true
        let text = try request.jsonString()  // the generated type carries its .proto file's descriptor
        XCTAssertEqual(text, #"{"responseSize":314159,"payload":{"body":"AP8="},"fillUsername":true}"#)
        XCTAssertEqual(try Grpc_Testing_SimpleRequest(jsonString: text), request)
        XCTAssertEqual(try json.json(request), text)
        // Proto names, an enum by number, an integer as a string: the same message.
        let other = #"{"response_size":"314159","payload":{"body":"AP8","type":0},"fill_username":true}"#
        XCTAssertEqual(try json.message(Grpc_Testing_SimpleRequest.self, fromJSON: other), request)
    }

    func testRefusalsNameTheFieldAndTheReason() {
        func refusal(_ text: String, ignoring: Bool = false) -> String {
            do {
                _ = try json.binary(fromJSON: text, type: "grpc.testing.SimpleRequest", ignoringUnknownFields: ignoring)
                return "accepted"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(refusal(#"{"payload":{"body":"!!"}}"#), "payload.body: expected base64 text, found text that is not base64")
        XCTAssertEqual(refusal(#"{"responseSize":2147483648}"#), #"responseSize: "2147483648" is out of range"#)
        XCTAssertEqual(refusal(#"{"responseSize":1.5}"#), #"responseSize: "1.5" is not an integer"#)
        XCTAssertEqual(refusal(#"{"fillUsername":"true"}"#), "fillUsername: expected true or false, found a string")
        XCTAssertEqual(refusal(#"{"responseType":"SHINY"}"#), #"responseType: "SHINY" is not a value of grpc.testing.PayloadType"#)
        XCTAssertEqual(refusal(#"{"responseType":"SHINY"}"#, ignoring: true), "accepted")
        XCTAssertEqual(refusal(#"{"colour":"red"}"#), #"colour: no field "colour" in grpc.testing.SimpleRequest"#)
        XCTAssertEqual(refusal(#"{"colour":"red"}"#, ignoring: true), "accepted")
        XCTAssertEqual(refusal(#"{"response_size":1,"responseSize":2}"#), "responseSize: field response_size is set twice")
        XCTAssertEqual(refusal(#"[]"#), "expected an object for grpc.testing.SimpleRequest, found an array")
        XCTAssertEqual(refusal(#"{"responseSize":1} x"#), "invalid JSON at byte 19: text after the value")
    }

    /// A hostile binary message (a `croupier json` input, a response) nested 50,000 deep is
    /// refused with an error, not followed down until the stack runs out.
    func testDeeplyNestedBinaryIsRefusedNotFollowed() throws {
        // KitchenSink.f_self (field 70) inside itself, built outside in: each level is a tag and a length.
        let levels = 50_000
        var lengths = [Int](repeating: 0, count: levels + 1)
        func varint(_ n: Int) -> [UInt8] {
            var out: [UInt8] = []
            var v = n
            repeat {
                out.append(UInt8(v & 0x7F) | (v >= 0x80 ? 0x80 : 0))
                v >>= 7
            } while v > 0
            return out
        }
        let tag: [UInt8] = [0xB2, 0x04]  // field 70, length-delimited
        for k in 1...levels { lengths[k] = tag.count + varint(lengths[k - 1]).count + lengths[k - 1] }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(lengths[levels])
        for k in stride(from: levels, through: 1, by: -1) { bytes += tag + varint(lengths[k - 1]) }
        let json = try ProtoJSON.forFile(Croupier_Codectest_V1_KitchenSink.protoFile!)
        XCTAssertThrowsError(try json.json(fromBinary: bytes, type: "croupier.codectest.v1.KitchenSink")) { error in
            XCTAssertTrue("\(error)".contains("nested deeper than 100"), "\(error)")
        }
        // At the limit it maps.
        let shallow = Array(bytes.suffix(lengths[100]))
        XCTAssertNoThrow(try json.json(fromBinary: shallow, type: "croupier.codectest.v1.KitchenSink"))
    }

    func testTheReaderRefusesWhatRFC8259Refuses() {
        for bad in ["01", "-", "1.", "1e", "[1,]", "{\"a\" 1}", "\"\\x\"", "\"\\ud800\"", "\"\\udc00x\"", "\"a\u{01}\"", "nul", "[", "\"\\u12\""] {
            XCTAssertThrowsError(try JSONValue(parsing: bad), bad)
        }
        XCTAssertThrowsError(try JSONValue(parsing: [0x22, 0xFF, 0x22]), "invalid UTF-8")
        XCTAssertThrowsError(try JSONValue(parsing: String(repeating: "[", count: 101) + String(repeating: "]", count: 101)), "too deep")
        XCTAssertEqual(try JSONValue(parsing: String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).serialized.count, 200)
        XCTAssertEqual(try JSONValue(parsing: #" "\ud83c\udca1 \u00e9\n" "#), .string("🂡 é\n"))
        XCTAssertEqual(try JSONValue(parsing: #"{"a":[1,-2.5e3,true,null]}"#).serialized, #"{"a":[1,-2.5e3,true,null]}"#)
    }
}
