import Foundation
import Wire

/// A gRPC request as HTTP/2 headers describe it (PROTOCOL-HTTP2.md), or
/// the same call as a JSON POST (Connect's unary shape: the body is the
/// request message in proto3 JSON, the answer an HTTP status and JSON).
struct GRPCRequest {
    /// How the request and the response are written.
    enum Framing: Equatable {
        /// `application/grpc`: length-prefixed messages, status in trailers.
        case grpc
        /// `application/grpc-web(+proto)`, or with `text`, `application/grpc-web-text(+proto)`:
        /// gRPC's messages, the status in a trailer frame at the end of the body; `-text` is base64.
        /// With `json`, `application/grpc-web(-text)+json`: each message is proto3 JSON (the gateway
        /// converts it both ways), so a page calls with no protobuf code, streams included.
        case grpcWeb(text: Bool, json: Bool)
        /// `application/json`: one JSON message each way, the status as an HTTP status.
        case json

        /// gRPC-Web's base64 variant.
        var isText: Bool {
            if case .grpcWeb(true, _) = self { return true }
            return false
        }

        /// Messages are proto3 JSON inside gRPC(-Web) framing (not a JSON call's whole body).
        var framesJSON: Bool {
            if case .grpcWeb(_, true) = self { return true }
            return false
        }

        /// The response's content type.
        var responseContentType: String {
            switch self {
            case .grpc: return "application/grpc"
            case .grpcWeb(let text, let json): return (text ? "application/grpc-web-text+" : "application/grpc-web+") + (json ? "json" : "proto")
            case .json: return "application/json"
            }
        }

        /// The framing a content type asks for; nil for neither.
        init?(contentType: String?) {
            if contentType == "application/grpc" {  // nearly every call: no allocation
                self = .grpc
                return
            }
            // The media type before any parameter, trimmed and lowercased, without Foundation (it is per call).
            guard let contentType else { return nil }
            let type = String(decoding: contentType.utf8.prefix { $0 != UInt8(ascii: ";") }.filter { $0 != 0x20 && $0 != 0x09 }
                .map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
            if type == "application/grpc" || type.hasPrefix("application/grpc+") {
                self = .grpc
            } else if type == "application/grpc-web" || type == "application/grpc-web+proto" {
                self = .grpcWeb(text: false, json: false)
            } else if type == "application/grpc-web-text" || type == "application/grpc-web-text+proto" {
                self = .grpcWeb(text: true, json: false)
            } else if type == "application/grpc-web+json" || type == "application/grpc-web-text+json" {
                self = .grpcWeb(text: type.hasPrefix("application/grpc-web-text"), json: true)
            } else if type == "application/json" {
                self = .json
            } else {
                return nil
            }
        }
    }

    let framing: Framing
    let path: String
    let service: String
    let method: String
    let timeout: Duration?
    /// The caller's custom metadata, reserved headers removed.
    let metadata: Metadata
    let authorization: String?
    let correlationID: String?
    let userAgent: String?
    /// The web page's origin, for a browser's call (CORS).
    let origin: String?

    /// Why a request cannot be served: a plain HTTP status (not gRPC at all)
    /// or a gRPC status in a trailers-only response.
    enum Rejection: Error {
        case http(Int, String)
        case status(RPCError)
    }

    /// Headers the gateway interprets itself; never forwarded as metadata.
    static let reserved: Set<String> = [
        "content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "authorization",
        "content-length", "host", "user-agent", "x-correlation-id", "grpc-message-type",
        "accept", "accept-encoding", "content-encoding", "connect-protocol-version", "connect-timeout-ms", "x-grpc-web", "x-user-agent",
        "origin", "referer",
    ]

    init(headers: [(name: String, value: String)]) throws(Rejection) {
        var method: String?, path: String?, contentType: String?, timeout: String?, encoding: String?, jsonTimeout: String?
        var authorization: String?, correlation: String?, agent: String?, origin: String?
        var metadata = Metadata()
        for (name, value) in headers {
            switch name {
            case ":method": method = value
            case ":path": path = value
            case "content-type": contentType = value
            case "grpc-timeout": timeout = value
            case "grpc-encoding", "content-encoding": encoding = value
            case "connect-timeout-ms": jsonTimeout = value
            case "authorization": authorization = value
            case "x-correlation-id": correlation = value
            case "user-agent": agent = value
            case "origin": origin = value
            default:
                if name.hasPrefix(":") || Self.reserved.contains(name) { continue }
                if name.hasPrefix("x-croupier-") { continue }  // only the gateway sets these
                if name.hasSuffix("-bin") {
                    guard let bytes = Self.decodeBinary(value) else {
                        throw .status(RPCError(.internal, "metadata \(name) is not valid base64"))
                    }
                    metadata.add(name, binary: bytes)
                } else {
                    metadata.add(name, value)
                }
            }
        }
        guard let framing = Framing(contentType: contentType) else {
            throw .http(415, "content-type must be application/grpc, application/grpc-web(-text)(+proto|+json) or application/json, got \(contentType ?? "none")")
        }
        guard method == "POST" else { throw .http(405, "gRPC and JSON calls use POST") }
        guard let path, path.hasPrefix("/") else { throw .status(RPCError(.unimplemented, "missing :path")) }
        // "/service/method": exactly one more slash, with something on both sides.
        let bytes = path.utf8
        let serviceStart = bytes.index(after: bytes.startIndex)
        guard let slash = bytes[serviceStart...].firstIndex(of: UInt8(ascii: "/")), slash != serviceStart,
            case let methodStart = bytes.index(after: slash), methodStart != bytes.endIndex,
            !bytes[methodStart...].contains(UInt8(ascii: "/"))
        else {
            throw .status(RPCError(.unimplemented, "malformed method path \(path)"))
        }
        if let encoding, encoding != "identity" {
            throw .status(RPCError(.unimplemented, "encoding \(encoding) is not supported (identity only)"))
        }
        var deadline: Duration?
        if let timeout {
            guard let d = Self.parseTimeout(timeout) else {
                throw .status(RPCError(.internal, "malformed grpc-timeout \(timeout)"))
            }
            deadline = d
        } else if let jsonTimeout, framing == .json {
            guard jsonTimeout.count <= 10, let ms = Int64(jsonTimeout), ms >= 0 else {
                throw .status(RPCError(.invalidArgument, "malformed connect-timeout-ms \(jsonTimeout)"))
            }
            deadline = .milliseconds(ms)
        }
        self.framing = framing
        self.path = path
        service = String(path[serviceStart..<slash])
        self.method = String(path[methodStart...])
        self.timeout = deadline
        self.metadata = metadata
        self.authorization = authorization
        correlationID = correlation
        userAgent = agent
        self.origin = origin
    }

    /// `grpc-timeout`: at most 8 digits and a unit H, M, S, m, u or n.
    static func parseTimeout(_ text: String) -> Duration? {
        guard let unit = text.last, (2...9).contains(text.count), let value = Int64(text.dropLast()), value >= 0 else { return nil }
        switch unit {
        case "H": return .seconds(value * 3600)
        case "M": return .seconds(value * 60)
        case "S": return .seconds(value)
        case "m": return .milliseconds(value)
        case "u": return .microseconds(value)
        case "n": return .nanoseconds(value)
        default: return nil
        }
    }

    /// Base64, padded or not (PROTOCOL-HTTP2.md: accept both).
    static func decodeBinary(_ text: String) -> [UInt8]? {
        var s = text.trimmingCharacters(in: .whitespaces)
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s).map { [UInt8]($0) }
    }
}

/// Response headers and trailers in gRPC's HTTP/2 form.
enum GRPCResponseHeaders {
    /// Metadata as header fields: binary values base64 without padding; keys
    /// and values HTTP/2 cannot carry are dropped.
    static func fields(_ metadata: Metadata) -> [(String, String)] {
        var out: [(String, String)] = []
        for (key, value) in metadata where isValidKey(key) && !key.hasPrefix("grpc-") && !key.hasPrefix(":") {
            switch value {
            case .binary(let b):
                out.append((key, Data(b).base64EncodedString().replacingOccurrences(of: "=", with: "")))
            case .text(let t):
                if t.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { out.append((key, t)) }
            }
        }
        return out
    }

    static func isValidKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x5F || c == 0x2E
        }
    }

    /// `grpc-status`, `grpc-message` (percent-encoded) and the trailing metadata.
    static func trailers(code: StatusCode, message: String, metadata: Metadata) -> [(String, String)] {
        var out = [("grpc-status", String(code.rawValue))]
        if !message.isEmpty { out.append(("grpc-message", percentEncode(message))) }
        return out + fields(metadata)
    }

    /// PROTOCOL-HTTP2.md: bytes outside 0x20–0x7E and '%' become %XX of the UTF-8 encoding.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            if b >= 0x20 && b <= 0x7E && b != UInt8(ascii: "%") {
                out.unicodeScalars.append(UnicodeScalar(b))
            } else {
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }
}
