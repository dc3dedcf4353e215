import XCTest

@testable import Wire

final class TraceContextTests: XCTestCase {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736"

    func testAValidTraceparentIsReadAndContinuedWithANewSpan() throws {
        let t = try XCTUnwrap(TraceContext(traceparent: "00-\(trace)-00f067aa0ba902b7-01"))
        XCTAssertEqual([t.traceID, t.spanID, t.flags], [trace, "00f067aa0ba902b7", "01"])
        let child = t.child()
        XCTAssertEqual(child.traceID, trace)
        XCTAssertNotEqual(child.spanID, t.spanID)
        XCTAssertEqual(TraceContext(traceparent: child.traceparent), child)
        XCTAssertEqual(TraceContext.continuing(t.traceparent).trace.traceID, trace)
        XCTAssertTrue(TraceContext.continuing(t.traceparent).continued)
    }

    func testInvalidTraceparentsAreRefusedAndANewTraceStarts() {
        for bad in [
            "", "00-\(trace)-00f067aa0ba902b7", "00-\(trace.uppercased())-00f067aa0ba902b7-01", "00-\(String(repeating: "0", count: 32))-00f067aa0ba902b7-01",
            "00-\(trace)-0000000000000000-01", "ff-\(trace)-00f067aa0ba902b7-01", "00-\(trace)-00f067aa0ba902b7-01-extra",
            "0x-\(trace)-00f067aa0ba902b7-01", "00_\(trace)-00f067aa0ba902b7-01",
        ] {
            XCTAssertNil(TraceContext(traceparent: bad), bad)
            XCTAssertNotEqual(TraceContext.continuing(bad).trace.traceID, trace, bad)
            XCTAssertFalse(TraceContext.continuing(bad).continued, bad)
        }
        // A later version is read by its version-00 prefix.
        XCTAssertEqual(TraceContext(traceparent: "01-\(trace)-00f067aa0ba902b7-01-more")?.traceID, trace)
        XCTAssertEqual(TraceContext(traceparent: "01-\(trace)-00f067aa0ba902b7-01-more")?.traceparent, "00-\(trace)-00f067aa0ba902b7-01")
        XCTAssertEqual(TraceContext(traceparent: "01-\(trace)-00f067aa0ba902b7-01")?.flags, "01")
    }

    func testANewTraceIsWellFormed() {
        let t = TraceContext.start()
        XCTAssertEqual(TraceContext(traceparent: t.traceparent), t)
        XCTAssertEqual(t.traceID.count, 32)
        XCTAssertEqual(t.spanID.count, 16)
        XCTAssertEqual(t.flags, "01")
        let child = t.child()
        XCTAssertEqual([child.traceID, child.flags], [t.traceID, t.flags])
        XCTAssertEqual(TraceContext(traceparent: child.traceparent), child)
    }
}
