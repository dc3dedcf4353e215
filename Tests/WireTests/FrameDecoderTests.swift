import Wire
import XCTest

final class FrameDecoderTests: XCTestCase {
    func testDecodesFramesSplitAtEveryByte() throws {
        let frames = [
            Frame(.callStart, stream: 1, message: Croupier_Wire_V1_CallStart.with { $0.method = "/a.B/C"; $0.timeoutMicros = 5 }),
            Frame(.message, stream: 1, payload: [1, 2, 3]),
            Frame(.endStream, stream: 1),
            Frame(.ping, payload: [0, 1, 2, 3, 4, 5, 6, 7]),
        ]
        let bytes = WirePreface.bytes + frames.flatMap(\.encoded)
        var decoder = FrameDecoder(maxFrameSize: 1024)
        var out: [Frame] = []
        for b in bytes {  // worst case: one byte per read
            decoder.append([b])
            while let f = try decoder.next() { out.append(f) }
        }
        XCTAssertEqual(out, frames)
        XCTAssertEqual(decoder.bufferedCount, 0)
    }

    func testSpecExampleBytes() throws {
        // docs/wire.md §3: CALL_START for EmptyCall on stream 1.
        let frame = Frame(.callStart, stream: 1, message: Croupier_Wire_V1_CallStart.with {
            $0.method = "/grpc.testing.TestService/EmptyCall"
        })
        XCTAssertEqual(Array(frame.encoded.prefix(12)), [0, 0, 0, 0x25, 0x10, 0, 0, 0, 0, 1, 0x0A, 0x23])
        XCTAssertEqual(Frame(.trailers, stream: 1, message: Croupier_Wire_V1_Trailers()).encoded, [0, 0, 0, 0, 0x14, 0, 0, 0, 0, 1])
    }

    func testRejectsBadPreface() {
        var d = FrameDecoder(maxFrameSize: 1024)
        d.append(Array("PRI * HTTP/2.0".utf8))
        XCTAssertThrowsError(try d.next()) { XCTAssertEqual($0 as? FrameError, .badPreface(Array("PRI * HT".utf8))) }
    }

    func testRejectsOversizedLengthBeforeBufferingPayload() {
        var d = FrameDecoder(maxFrameSize: 1024, expectPreface: false)
        d.append([0xFF, 0xFF, 0xFF, 0xFF, 0x11, 0, 0, 0, 0, 1])
        XCTAssertThrowsError(try d.next()) { XCTAssertEqual($0 as? FrameError, .frameTooLarge(length: .max, max: 1024)) }
    }

    func testRejectsUnknownTypeAndFlags() {
        var d = FrameDecoder(maxFrameSize: 1024, expectPreface: false)
        d.append([0, 0, 0, 0, 0x7F, 0, 0, 0, 0, 0])
        XCTAssertThrowsError(try d.next()) { XCTAssertEqual($0 as? FrameError, .unknownType(0x7F)) }
        var e = FrameDecoder(maxFrameSize: 1024, expectPreface: false)
        e.append([0, 0, 0, 0, 0x11, 0x01, 0, 0, 0, 1])
        XCTAssertThrowsError(try e.next()) { XCTAssertEqual($0 as? FrameError, .nonzeroFlags(type: 0x11, flags: 1)) }
    }

    func testMessageWrittenInPlaceMatchesSerializedBytes() throws {
        let m = Grpc_Testing_SimpleRequest.with { $0.responseSize = 7; $0.payload = .with { $0.body = [9, 9] } }
        var buffer: [UInt8] = []
        Frame.append(m, stream: 3, to: &buffer)
        XCTAssertEqual(buffer, Frame(.message, stream: 3, payload: m.serializedBytes()).encoded)
    }

    func testForEachHandsOverEveryCompleteFrameThenStopsAtABadHeader() throws {
        let good = [Frame(.message, stream: 1, payload: [1, 2]), Frame(.endStream, stream: 1), Frame(.message, stream: 3, payload: [3])]
        var d = FrameDecoder(maxFrameSize: 1024, expectPreface: false)
        let partial = Frame(.message, stream: 5, payload: [4, 5, 6]).encoded
        d.append(good.flatMap(\.encoded) + partial.prefix(11))
        var seen: [Frame] = []
        try d.forEach { seen.append($0.frame); return true }
        XCTAssertEqual(seen, good)
        XCTAssertEqual(d.bufferedCount, 11, "the incomplete frame stays buffered")

        // Stopping early leaves the rest for the next call.
        d.append(Array(partial.dropFirst(11)) + good[0].encoded)
        seen = []
        try d.forEach { seen.append($0.frame); return false }
        XCTAssertEqual(seen, [Frame(.message, stream: 5, payload: [4, 5, 6])])
        XCTAssertEqual(try d.next(), good[0])

        // Frames before a bad header are handed over; the bad one throws.
        d.append(good[1].encoded + [0, 0, 0, 0, 0x7F, 0, 0, 0, 0, 1] + good[2].encoded)
        seen = []
        XCTAssertThrowsError(try d.forEach { seen.append($0.frame); return true }) {
            XCTAssertEqual($0 as? FrameError, .unknownType(0x7F))
        }
        XCTAssertEqual(seen, [good[1]])
    }
}
