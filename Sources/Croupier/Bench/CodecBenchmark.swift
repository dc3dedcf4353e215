import Foundation
import Wire

/// `croupier bench codec`: encode/decode throughput of the protobuf codec on
/// a small (~40 B) and a large (~300 KB, interop large_unary) message, next
/// to Python protobuf's upb implementation on the same bytes in the same run.
enum CodecBenchmark {
    struct Figures {
        let bytes: Int
        let decodePerSecond: Double
        let encodePerSecond: Double
    }

    static func smallMessage() -> Grpc_Testing_SimpleRequest {
        .with {
            $0.responseSize = 314_159
            $0.fillUsername = true
            $0.payload = .with { $0.body = Array("croupier-codec-bench-24b".utf8) }
            $0.responseStatus = .with { $0.code = 0 }
        }
    }

    static func largeMessage() -> Grpc_Testing_SimpleResponse {
        .with {
            $0.payload = .with { $0.body = [UInt8](repeating: 0, count: 314_159) }
            $0.username = "croupier"
        }
    }

    static func measure<M: ProtoMessage>(_ message: M, seconds: Double) throws -> Figures {
        let bytes = message.serializedBytes()
        let decode = try operationsPerSecond(seconds: seconds) {
            try M(serializedBytes: bytes).unknownFields.bytes.count &+ 1
        }
        let encode = operationsPerSecond(seconds: seconds) { message.serializedBytes().count }
        return Figures(bytes: bytes.count, decodePerSecond: decode, encodePerSecond: encode)
    }

    static func run(arguments: [String]) throws -> Int32 {
        let seconds = Double(option("--seconds", in: arguments) ?? "") ?? 1.0
        let outputPath = option("--out", in: arguments) ?? "bench/results/codec.md"
        let small = smallMessage()
        let large = largeMessage()
        let swift = (small: try measure(small, seconds: seconds), large: try measure(large, seconds: seconds))

        // The reference: Python protobuf (upb) on the very same bytes.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(small.serializedBytes()).write(to: dir.appendingPathComponent("small.bin"))
        try Data(large.serializedBytes()).write(to: dir.appendingPathComponent("large.bin"))
        let python = try runPythonReference(dir: dir, seconds: seconds)

        var rows: [String] = []
        for (label, s) in [("small", swift.small), ("large", swift.large)] {
            let p = python?[label]
            for (op, rate, ref) in [("decode", s.decodePerSecond, p?.decodePerSecond), ("encode", s.encodePerSecond, p?.encodePerSecond)] {
                let mbps = rate * Double(s.bytes) / 1e6
                let refText = ref.map { "\(formatRate($0)) msg/s, \(String(format: "%.1f", $0 * Double(s.bytes) / 1e6)) MB/s" } ?? "n/a"
                let ratio = ref.map { String(format: "%.2f×", rate / $0) } ?? "n/a"
                rows.append("| \(label) (\(s.bytes) B) | \(op) | \(formatRate(rate)) msg/s, \(String(format: "%.1f", mbps)) MB/s | \(refText) | \(ratio) |")
            }
        }
        let report = """
            # croupier bench codec

            - date: \(ISO8601DateFormatter().string(from: Date()))
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB
            - method: best of 3 runs of ≥ \(seconds) s each, one thread; reference = Python protobuf \
            (\(python == nil ? "unavailable" : "upb")) on the same encodings, same run
            - small = grpc.testing.SimpleRequest, large = grpc.testing.SimpleResponse with the interop large_unary payload
            - the Python figures include the interpreter's per-call overhead; upb called from C is faster
            - the large message stays in cache between iterations, so its MB/s is a hot-cache memcpy rate

            | message | op | Swift (Wire codec) | Python protobuf (upb) | Swift / upb |
            | --- | --- | --- | --- | --- |
            \(rows.joined(separator: "\n"))

            """
        try record(report, to: outputPath)
        return 0
    }

    /// Runs bench/codec_python.py; nil (with a warning) when Python protobuf is missing.
    static func runPythonReference(dir: URL, seconds: Double) throws -> [String: Figures]? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "bench/codec_python.py", dir.path, String(seconds)]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            FileHandle.standardError.write("warning: Python reference failed; run from the repository root with protobuf and grpcio-tools installed\n".data(using: .utf8)!)
            return nil
        }
        var result: [String: Figures] = [:]
        for label in ["small", "large"] {
            guard let entry = json[label] as? [String: Any], let b = entry["bytes"] as? Int,
                let d = entry["decode_per_s"] as? Double, let e = entry["encode_per_s"] as? Double
            else { continue }
            result[label] = Figures(bytes: b, decodePerSecond: d, encodePerSecond: e)
        }
        return result
    }
}

/// The value after `name` in `arguments`, e.g. `--seconds 2`.
func option(_ name: String, in arguments: [String]) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}
