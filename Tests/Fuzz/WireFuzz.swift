// libFuzzer entry point for the Wire frame parser and the protobuf decoder.
// Built and run by scripts/fuzz (not part of the package build); scripts/test runs it briefly.

@_cdecl("LLVMFuzzerTestOneInput")
public func wireFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    // Frames: with and without the preface, split at an input-chosen point.
    var decoder = FrameDecoder(maxFrameSize: 1 << 16, expectPreface: size > 0 && data[0] & 1 == 1)
    let split = size > 1 ? Int(data[size - 1]) % size : size
    decoder.append(UnsafeRawBufferPointer(rebasing: bytes[0..<split]))
    decoder.append(UnsafeRawBufferPointer(rebasing: bytes[split...]))
    while let frame = try? decoder.next() {
        switch frame.type {
        case .callStart: _ = try? Croupier_Wire_V1_CallStart(serializedBytes: frame.payload)
        case .trailers: _ = try? Croupier_Wire_V1_Trailers(serializedBytes: frame.payload)
        case .goAway: _ = try? Croupier_Wire_V1_GoAway(serializedBytes: frame.payload)
        case .authResponse: _ = try? Croupier_Wire_V1_AuthResponse(serializedBytes: frame.payload)
        default: _ = try? Grpc_Testing_SimpleRequest(serializedBytes: frame.payload)
        }
    }
    // Messages: whole input as a few message types; whatever decodes must re-encode stably.
    if let m = try? Grpc_Testing_StreamingOutputCallRequest(buffer: bytes) {
        let once = m.serializedBytes()
        guard let again = try? Grpc_Testing_StreamingOutputCallRequest(serializedBytes: once), again.serializedBytes() == once else {
            fatalError("unstable re-encoding")
        }
    }
    _ = try? Grpc_Reflection_V1_ServerReflectionResponse(buffer: bytes)
    _ = try? Grpc_Health_V1_HealthListResponse(buffer: bytes)
    return 0
}
