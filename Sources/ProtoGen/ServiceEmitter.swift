import Wire

/// Emits, for one service, a namespace with its method descriptors, a typed
/// server protocol (one requirement per method, shaped by call kind) and a
/// typed client stub over any `RPCChannel`.
struct ServiceEmitter {
    let symbols: SymbolTable
    let comments: [[Int32]: String]
    let access: String

    func emit(_ s: ServiceDescriptor, package: String, path: [Int32], into w: inout CodeWriter) throws {
        let fullName = package.isEmpty ? s.name : package + "." + s.name
        let ns = Naming.packagePrefix(package) + s.name
        let methods = try s.methods.enumerated().map { i, m in
            (m: m, index: i, swift: Naming.escaped(Naming.lowerCamel(m.name)),
             input: try symbols.swiftName(m.inputType), output: try symbols.swiftName(m.outputType),
             kind: m.clientStreaming ? (m.serverStreaming ? "bidirectionalStreaming" : "clientStreaming")
                : (m.serverStreaming ? "serverStreaming" : "unary"))
        }

        w.doc(comments[path])
        w.block("\(access) enum \(ns)") { w in
            w.line("\(access) static let name = \(Naming.literal(fullName))")
            w.line()
            w.block("\(access) enum Method") { w in
                for m in methods {
                    w.line("\(access) static let \(m.swift) = MethodDescriptor(service: name, method: \(Naming.literal(m.m.name)), kind: .\(m.kind))")
                }
                w.line("\(access) static let all: [MethodDescriptor] = [\(methods.map(\.swift).joined(separator: ", "))]")
            }
            w.line()
            w.doc("What a server implements for \(fullName).")
            w.block("\(access) protocol ServiceProtocol: RPCService") { w in
                for m in methods {
                    w.doc(comments[path + [2, Int32(m.index)]])
                    switch m.kind {
                    case "unary":
                        w.line("func \(m.swift)(request: \(m.input), context: ServerContext) async throws -> \(m.output)")
                    case "serverStreaming":
                        w.line("func \(m.swift)(request: \(m.input), response: RPCWriter<\(m.output)>, context: ServerContext) async throws")
                    case "clientStreaming":
                        w.line("func \(m.swift)(request: RPCAsyncSequence<\(m.input)>, context: ServerContext) async throws -> \(m.output)")
                    default:
                        w.line("func \(m.swift)(request: RPCAsyncSequence<\(m.input)>, response: RPCWriter<\(m.output)>, context: ServerContext) async throws")
                    }
                }
            }
            w.line()
            w.doc("Calls \(fullName) over any channel.")
            w.block("\(access) struct Client: Sendable") { w in
                w.line("\(access) let channel: any RPCChannel")
                w.line()
                w.line("\(access) init(channel: any RPCChannel) { self.channel = channel }")
                for m in methods {
                    w.line()
                    w.doc(comments[path + [2, Int32(m.index)]])
                    switch m.kind {
                    case "unary":
                        w.block("\(access) func \(m.swift)(_ request: \(m.input), options: CallOptions = CallOptions()) async throws -> \(m.output)") { w in
                            w.line("try await channel.unary(Method.\(m.swift), request, options: options)")
                        }
                    case "serverStreaming":
                        w.block("\(access) func \(m.swift)(_ request: \(m.input), options: CallOptions = CallOptions(), onResponse: @Sendable (\(m.output)) async throws -> Void) async throws") { w in
                            w.line("try await channel.serverStreaming(Method.\(m.swift), request, options: options, onResponse: onResponse)")
                        }
                    case "clientStreaming":
                        w.block("\(access) func \(m.swift)(options: CallOptions = CallOptions(), requests: @Sendable (RPCWriter<\(m.input)>) async throws -> Void) async throws -> \(m.output)") { w in
                            w.line("try await channel.clientStreaming(Method.\(m.swift), options: options, requests: requests)")
                        }
                    default:
                        w.block("\(access) func \(m.swift)(options: CallOptions = CallOptions(), requests: @escaping @Sendable (RPCWriter<\(m.input)>) async throws -> Void, onResponse: @Sendable (\(m.output)) async throws -> Void) async throws") { w in
                            w.line("try await channel.bidirectionalStreaming(Method.\(m.swift), options: options, requests: requests, onResponse: onResponse)")
                        }
                    }
                }
            }
        }
        w.line()
        w.block("extension \(ns).ServiceProtocol") { w in
            w.block("\(access) var rpcHandlers: [RPCHandler]") { w in
                w.line("[")
                for m in methods {
                    let args: String
                    switch m.kind {
                    case "unary", "clientStreaming": args = "request: $0, context: $1"
                    default: args = "request: $0, response: $1, context: $2"
                    }
                    w.line("    .\(m.kind)(\(ns).Method.\(m.swift)) { try await self.\(m.swift)(\(args)) },")
                }
                w.line("]")
            }
        }
    }
}
