// gRPC-Web for the console: each call is a POST of one length-prefixed
// message with content-type application/grpc-web+json (proto3 JSON
// messages, which the gateway converts to and from protobuf), answered by
// message frames and a trailer frame carrying grpc-status (PROTOCOL-WEB.md).
// Server streams hand each message to `onMessage` as its frame arrives.

export const CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
  "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

/** A call that ended with a status other than OK: its code, name, message and correlation id. */
export class RPCError extends Error {
  constructor(code, message, correlationId, trailers = {}) {
    super(message);
    this.code = code;
    this.codeName = CODES[code] || `code ${code}`;
    this.correlationId = correlationId || "";
    this.trailers = trailers;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function frame(message) {
  const body = encoder.encode(JSON.stringify(message));
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, 5);
  return out;
}

/** Splits a body arriving in pieces into frames. */
class Frames {
  constructor() { this.pending = new Uint8Array(0); }
  push(chunk) {
    const joined = new Uint8Array(this.pending.length + chunk.length);
    joined.set(this.pending);
    joined.set(chunk, this.pending.length);
    this.pending = joined;
  }
  *take() {
    while (this.pending.length >= 5) {
      const length = new DataView(this.pending.buffer, this.pending.byteOffset).getUint32(1);
      if (this.pending.length < 5 + length) return;
      yield { flag: this.pending[0], payload: this.pending.subarray(5, 5 + length) };
      this.pending = this.pending.subarray(5 + length);
    }
  }
}

function trailersOf(bytes) {
  const out = {};
  for (const line of decoder.decode(bytes).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

function percentDecoded(text) {
  try { return decodeURIComponent(text); } catch { return text; }
}

/** One frame per message, one after another: a client stream sent whole. */
function frameAll(messages) {
  const parts = messages.map(frame);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Calls `path` (/package.Service/Method) with `request` (an array of them
 * for a client-streaming method, all sent in one body); resolves to the
 * response messages (or, with `onMessage`, hands each to it and resolves
 * to none) once the call ends OK, else rejects with an RPCError.
 */
export async function call(path, request, { token, onMessage, signal } = {}) {
  const headers = { "content-type": "application/grpc-web+json", "x-grpc-web": "1" };
  if (token) headers.authorization = `Bearer ${token}`;
  const body = Array.isArray(request) ? frameAll(request) : frame(request);
  let response;
  try {
    response = await fetch(path, { method: "POST", headers, body, signal });
  } catch (e) {
    if (signal && signal.aborted) throw new RPCError(1, "cancelled");
    throw new RPCError(14, `the gateway cannot be reached: ${e.message}`);
  }
  const correlationId = response.headers.get("x-correlation-id") || "";
  if (!response.ok) throw new RPCError(14, `HTTP ${response.status} ${await response.text()}`.trim(), correlationId);
  const reader = response.body.getReader();
  const incoming = new Frames();
  const messages = [];
  let trailers = null;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw new RPCError(signal && signal.aborted ? 1 : 14, `the call was cut off: ${e.message}`, correlationId);
    }
    if (chunk.done) break;
    incoming.push(chunk.value);
    for (const f of incoming.take()) {
      if (f.flag & 0x80) {
        trailers = trailersOf(f.payload);
      } else {
        const message = JSON.parse(decoder.decode(f.payload));
        if (onMessage) onMessage(message); else messages.push(message);
      }
    }
  }
  if (!trailers) throw new RPCError(14, "the call ended without a status", correlationId);
  const code = Number(trailers["grpc-status"]);
  if (code !== 0) throw new RPCError(code, percentDecoded(trailers["grpc-message"] || ""), correlationId, trailers);
  return messages;
}

/** A unary call: the one response message. */
export async function unary(path, request, options) {
  const [message] = await call(path, request, options);
  return message;
}
