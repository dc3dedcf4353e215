import Wire
import Foundation

/// What is generated where: the one list both `croupier-protogen` and the
/// staleness test use.
public struct GenerationTarget: Sendable {
    /// Output directory, relative to the repository root.
    public let outputDirectory: String
    /// protoc `-I` paths, relative to the repository root.
    public let includePaths: [String]
    /// .proto files to generate, as imported.
    public let files: [String]
    /// `public` for library modules, `internal` for test-only schemas.
    public let access: String
    /// Whether the output lives outside the Wire module and so must import it.
    public var importsWire: Bool { !outputDirectory.hasPrefix("Sources/Wire/") }

    public static let all: [GenerationTarget] = [
        GenerationTarget(
            outputDirectory: "Sources/Wire/Generated", includePaths: ["protos"],
            files: [
                "grpc/health/v1/health.proto",
                "grpc/reflection/v1/reflection.proto",
                "grpc/reflection/v1alpha/reflection.proto",
                "grpc/testing/empty.proto",
                "grpc/testing/messages.proto",
                "grpc/testing/test.proto",
                "croupier/wire/v1/wire.proto",
                "croupier/ops/v1/metrics.proto",
            ],
            access: "public"),
        GenerationTarget(
            outputDirectory: "Sources/LoyaltyService/Generated", includePaths: ["protos"],
            files: ["croupier/loyalty/v1/loyalty.proto"], access: "public"),
        GenerationTarget(
            outputDirectory: "Sources/GameTablesService/Generated", includePaths: ["protos"],
            files: ["croupier/gametables/v1/gametables.proto"], access: "public"),
        GenerationTarget(
            outputDirectory: "Sources/StagingService/Generated", includePaths: ["protos"],
            files: ["croupier/staging/v1/staging.proto"], access: "public"),
        GenerationTarget(
            outputDirectory: "Tests/WireTests/Generated", includePaths: ["protos", "Tests/Protos"],
            files: ["croupier/codectest/v1/kitchen_sink.proto"],
            access: "internal"),
    ]
}

/// Runs protoc and the generator for a target.
public enum ProtoGenRunner {
    public enum Failure: Error, CustomStringConvertible {
        case protocMissing
        case protocFailed(String)

        public var description: String {
            switch self {
            case .protocMissing: return "protoc not found on PATH (Debian: apt-get install protobuf-compiler)"
            case .protocFailed(let s): return "protoc failed: \(s)"
            }
        }
    }

    /// The protoc on PATH, if any.
    public static func findProtoc() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/local/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/protoc"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Generated files for `target`, computed from the .proto sources under `root`.
    public static func generate(_ target: GenerationTarget, root: URL) throws -> [Generator.Output] {
        guard let protoc = findProtoc() else { throw Failure.protocMissing }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("protogen-\(UUID().uuidString).pb")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: protoc)
        process.currentDirectoryURL = root
        process.arguments = target.includePaths.map { "-I\($0)" }
            + ["--include_imports", "--include_source_info", "--descriptor_set_out=\(tmp.path)"] + target.files
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw Failure.protocFailed(text)
        }
        let set = try [UInt8](Data(contentsOf: tmp))
        return try Generator(descriptorSet: set).generate(files: target.files, access: target.access, importWire: target.importsWire)
    }
}
