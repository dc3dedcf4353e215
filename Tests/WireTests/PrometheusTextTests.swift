import XCTest

@testable import Wire

final class PrometheusTextTests: XCTestCase {
    func testAHistogramIsCumulativeWithCountAndSum() {
        let h = DurationHistogram(bounds: [0.1, 1])
        for s in [0.05, 0.5, 0.5, 7] { h.observe(seconds: s) }
        var out = PrometheusText()
        h.render(into: &out, "x_seconds", "How long.")
        XCTAssertEqual(out.text, """
            # HELP x_seconds How long.
            # TYPE x_seconds histogram
            x_seconds_bucket{le="0.1"} 1
            x_seconds_bucket{le="1"} 3
            x_seconds_bucket{le="+Inf"} 4
            x_seconds_sum 8.05
            x_seconds_count 4

            """)
    }

    func testLabelValuesAreEscaped() {
        var out = PrometheusText()
        out.sample("y", [("k", "a\\b\"c\nd")], 2)
        XCTAssertEqual(out.text, "y{k=\"a\\\\b\\\"c\\nd\"} 2\n")
    }
}
