import Wire
import XCTest

/// A service whose one method waits (20 s), and records how its wait ended:
/// "finished", or "cancelled" when cancellation or a deadline reached it.
public struct WaitingService: RPCService {
    public static let wait = MethodDescriptor(service: "probe.Probe", method: "Wait", kind: .unary)
    public let outcomes: Outcomes

    public actor Outcomes {
        public private(set) var values: [String] = []
        public init() {}
        func add(_ v: String) { values.append(v) }
    }

    public init(outcomes: Outcomes) { self.outcomes = outcomes }

    public var rpcHandlers: [RPCHandler] {
        [.unary(Self.wait) { (_: Grpc_Testing_Empty, _: ServerContext) async throws -> Grpc_Testing_Empty in
            do {
                try await Task.sleep(for: .seconds(20))
                await outcomes.add("finished")
            } catch {
                await outcomes.add("cancelled")
                throw error
            }
            return Grpc_Testing_Empty()
        }]
    }
}

/// Waits up to 2 s for the waiting handlers' outcomes to be `expected`.
public func waitFor(
    _ outcomes: WaitingService.Outcomes, _ expected: [String], file: StaticString = #filePath, line: UInt = #line
) async throws {
    for _ in 0..<200 {
        if await outcomes.values == expected { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    let got = await outcomes.values
    XCTAssertEqual(got, expected, file: file, line: line)
}
