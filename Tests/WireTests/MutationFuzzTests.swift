import Wire
import XCTest

/// A bounded random-mutation run over valid encodings: every input either
/// decodes or fails with `ProtoDecodingError`; nothing traps or hangs, and
/// whatever decodes re-encodes to a stable encoding.
final class MutationFuzzTests: XCTestCase {
    /// xorshift64*: deterministic, so a failure names a reproducible iteration.
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    }

    static func seeds() -> [[UInt8]] {
        let sink = CodecConformanceTests.expectedKitchenSink()
        let request = Grpc_Testing_SimpleRequest.with {
            $0.responseSize = 314_159
            $0.payload = Grpc_Testing_Payload.with { $0.body = [UInt8](repeating: 0, count: 271_828 % 64) }
            $0.responseStatus = Grpc_Testing_EchoStatus.with { $0.code = 2; $0.message = "test status" }
        }
        return [sink.serializedBytes(), KitchenSink.with { $0.fSelf = sink }.serializedBytes(), request.serializedBytes()]
    }

    static func mutate(_ input: [UInt8], _ rng: inout Rng) -> [UInt8] {
        var b = input
        for _ in 0...rng.below(3) {
            guard !b.isEmpty else { return [UInt8(truncatingIfNeeded: rng.next())] }
            let i = rng.below(b.count)
            switch rng.below(7) {
            case 0: b[i] ^= UInt8(1 << rng.below(8))  // flip a bit
            case 1: b[i] = UInt8(truncatingIfNeeded: rng.next())  // random byte
            case 2: b[i] = [0x00, 0x7F, 0x80, 0xFF][rng.below(4)]  // interesting byte
            case 3: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
            case 4: b.remove(at: i)
            case 5: b.removeLast(rng.below(b.count))  // truncate
            default:  // duplicate a span
                let n = min(rng.below(16) + 1, b.count - i)
                b.insert(contentsOf: b[i..<(i + n)], at: rng.below(b.count))
            }
        }
        return b
    }

    func testRandomMutationsNeverCrash() {
        let seeds = Self.seeds()
        var rng = Rng(state: 0x9E37_79B9_7F4A_7C15)
        var decoded = 0
        var rejected = 0
        let iterations = 60_000
        for iteration in 0..<iterations {
            let input = Self.mutate(seeds[iteration % seeds.count], &rng)
            do {
                let m = try KitchenSink(serializedBytes: input)
                decoded += 1
                let once = m.serializedBytes()
                let twice = try KitchenSink(serializedBytes: once).serializedBytes()
                if once != twice { return XCTFail("iteration \(iteration): re-encoding is not stable") }
            } catch is ProtoDecodingError {
                rejected += 1
            } catch {
                return XCTFail("iteration \(iteration): unexpected error \(error)")
            }
        }
        XCTAssertEqual(decoded + rejected, iterations)
        // Both outcomes must be well represented, or the mutations are not exercising the decoder.
        XCTAssertGreaterThan(decoded, iterations / 20)
        XCTAssertGreaterThan(rejected, iterations / 20)
        print("mutation run: \(iterations) inputs, \(decoded) decoded, \(rejected) rejected with a typed error")
    }
}
