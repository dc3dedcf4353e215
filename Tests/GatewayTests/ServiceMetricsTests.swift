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

    /// A service's database figures (the same in every replica) go in once and unlabelled, beside the labelled ones.
    func testADatabaseTextIsMergedWithoutAReplicaLabel() {
        let process = """
            # HELP a_total Things.
            # TYPE a_total counter
            a_total 1

            """
        let database = """
            # HELP q_depth Waiting.
            # TYPE q_depth gauge
            q_depth{queue="diff"} 4

            """
        XCTAssertEqual(ServiceMetrics.merge([("h:1", process), (nil, database), ("h:2", process)]), """
            # HELP a_total Things.
            # TYPE a_total counter
            a_total{replica="h:1"} 1
            a_total{replica="h:2"} 1
            # HELP q_depth Waiting.
            # TYPE q_depth gauge
            q_depth{queue="diff"} 4

            """)
    }
}
