import XCTest

@testable import Gateway

final class ServiceMetricsTests: XCTestCase {
    /// Two replicas' texts: each family once, every sample labelled with its replica.
    func testReplicasAreMergedFamilyByFamilyWithAReplicaLabel() {
        let one = """
            # HELP a_total Things.
            # TYPE a_total counter
            a_total{kind="x"} 1
            # HELP b_seconds Time.
            # TYPE b_seconds histogram
            b_seconds_bucket{le="1"} 2
            b_seconds_sum 0.5
            b_seconds_count 2

            """
        let two = """
            # HELP a_total Things.
            # TYPE a_total counter
            a_total{kind="x"} 3
            # HELP b_seconds Time.
            # TYPE b_seconds histogram
            b_seconds_bucket{le="1"} 0
            b_seconds_sum 0
            b_seconds_count 0

            """
        XCTAssertEqual(ServiceMetrics.merge([("h:1", one), ("h:2", two)]), """
            # HELP a_total Things.
            # TYPE a_total counter
            a_total{kind="x",replica="h:1"} 1
            a_total{kind="x",replica="h:2"} 3
            # HELP b_seconds Time.
            # TYPE b_seconds histogram
            b_seconds_bucket{le="1",replica="h:1"} 2
            b_seconds_sum{replica="h:1"} 0.5
            b_seconds_count{replica="h:1"} 2
            b_seconds_bucket{le="1",replica="h:2"} 0
            b_seconds_sum{replica="h:2"} 0
            b_seconds_count{replica="h:2"} 0

            """)
    }
}
