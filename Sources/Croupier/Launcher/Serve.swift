import Dispatch
import Foundation
import Wire

/// `croupier serve <component>`: runs one component in this process until
/// SIGTERM or SIGINT, then drains gracefully (GOAWAY; open calls finish).
enum Serve {
    static func run(component: String, arguments: [String]) async throws -> Int32 {
        let config = try Configuration.load(arguments: arguments)
        let services: [any RPCService]
        switch component {
        case "interop": services = [InteropTestService()]
        default:
            throw LaunchError("unknown component '\(component)'; available: \(Configuration.components.joined(separator: ", "))")
        }
        let server = WireServer(name: component, services: services, secret: config.internalSecret, logger: { line in
            FileHandle.standardError.write(Data("[\(component)] \(line)\n".utf8))
        })
        let port = try server.start(port: UInt16(config.ports[component] ?? 0))
        // The launcher waits for this line.
        FileHandle.standardOutput.write(Data("READY \(component) 127.0.0.1:\(port)\n".utf8))
        await waitForTerminationSignal()
        FileHandle.standardError.write(Data("[\(component)] draining\n".utf8))
        await server.shutdown(timeout: .seconds(10))
        return 0
    }
}

/// Suspends until SIGTERM or SIGINT arrives.
func waitForTerminationSignal() async {
    let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
    var sources: [DispatchSourceSignal] = []
    for sig in [SIGTERM, SIGINT] {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { continuation.yield(sig) }
        source.resume()
        sources.append(source)
    }
    for await _ in stream { break }
    withExtendedLifetime(sources) {}
}
