import XCTest
@testable import Wire

final class MethodTableTests: XCTestCase {
    /// Every registered path is found by its bytes, through any probing; near misses are not.
    func testLooksUpEveryPathByItsBytes() {
        var handlers: [String: RPCHandler] = [:]
        for i in 0..<200 {
            let method = MethodDescriptor(service: "pkg.Service\(i % 7)", method: "Method\(i)", kind: .unary)
            handlers[method.path] = RPCHandler(unary: method) { bytes, _ in bytes }
        }
        let table = MethodTable(handlers)
        for (path, handler) in handlers {
            let found = Array(path.utf8).withUnsafeBytes { table.lookup($0) }
            XCTAssertEqual(found?.handler.method, handler.method)
        }
        for missing in ["/pkg.Service0/Method", "/pkg.Service0/Method0x", "", "/"] {
            XCTAssertNil(Array(missing.utf8).withUnsafeBytes { table.lookup($0) }, missing)
        }
    }

    /// Descriptors are equal when service, method and kind are, not just the path they make.
    func testDescriptorEqualityIsByNameNotPath() {
        let a = MethodDescriptor(service: "pkg.S", method: "M", kind: .unary)
        XCTAssertEqual(a, MethodDescriptor(service: "pkg.S", method: "M", kind: .unary))
        XCTAssertNotEqual(a, MethodDescriptor(service: "pkg.S", method: "M", kind: .serverStreaming))
        let b = MethodDescriptor(service: "a/b", method: "c", kind: .unary)
        let c = MethodDescriptor(service: "a", method: "b/c", kind: .unary)
        XCTAssertEqual(b.path, c.path)
        XCTAssertNotEqual(b, c)
        XCTAssertEqual(Set([a, a, b, c]).count, 3)
    }
}
