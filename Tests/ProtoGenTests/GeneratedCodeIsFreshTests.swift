import Foundation
import ProtoGen
import XCTest

/// Generated code is committed so building needs no protoc; this test
/// regenerates it from protos/ and fails on any difference.
final class GeneratedCodeIsFreshTests: XCTestCase {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testCommittedCodeMatchesProtos() throws {
        guard ProtoGenRunner.findProtoc() != nil else {
            // CI installs protobuf-compiler through the README's test command; only a
            // machine without it skips, and says so.
            throw XCTSkip("protoc not on PATH: cannot check generated code for staleness")
        }
        for target in GenerationTarget.all {
            let outputs = try ProtoGenRunner.generate(target, root: root)
            XCTAssertEqual(outputs.count, target.files.count)
            for output in outputs {
                let url = root.appendingPathComponent(target.outputDirectory).appendingPathComponent(output.fileName)
                let committed = try? String(contentsOf: url, encoding: .utf8)
                XCTAssertEqual(committed, output.contents,
                    "\(target.outputDirectory)/\(output.fileName) is stale: run `swift run croupier-protogen`")
            }
        }
    }

    func testEmbeddedDescriptorIsTheFileDescriptorProto() throws {
        // Reflection serves these bytes; they must parse as the file they name.
        let set = try [UInt8](Data(contentsOf: try descriptorSet()))
        let generated = try Generator(descriptorSet: set)
            .generate(files: ["grpc/health/v1/health.proto"], access: "public", importWire: false)
        let source = generated[0].contents
        XCTAssertTrue(source.contains("name: \"grpc/health/v1/health.proto\""))
        XCTAssertTrue(source.contains("\"grpc.health.v1.Health.Watch\""))
        XCTAssertTrue(source.contains("services: [\"grpc.health.v1.Health\"]"))
    }

    private func descriptorSet() throws -> URL {
        guard let protoc = ProtoGenRunner.findProtoc() else { throw XCTSkip("protoc not on PATH") }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("health-\(UUID().uuidString).pb")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: protoc)
        p.currentDirectoryURL = root
        p.arguments = ["-Iprotos", "--include_imports", "--descriptor_set_out=\(out.path)", "grpc/health/v1/health.proto"]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return out
    }
}
