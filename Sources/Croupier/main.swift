import Foundation
import Wire

// croupier: the one executable. Hand-written argument parsing (no packages).

let version = "0.1.0"

let usage = """
    croupier — game-platform microservices over the Wire protocol

    usage: croupier <command> [options]

    commands:
      up                 start every component as its own supervised process
      serve <component>  run one component in the foreground
      token              print a gateway token (JWT HS256) signed with the configured secret
      call               call any method through the gateway with JSON in and out (reflection; grpcurl's job)
      json               convert messages between protobuf's binary encoding and proto3 JSON (a filter)
      cert               write a self-signed development TLS certificate and key for the gateway
      bench codec        benchmark the protobuf codec against Python protobuf (upb)
      bench storage      benchmark durable writes (group commit vs not), queue, event log
      bench wire         benchmark Wire unary/streaming calls against a raw epoll echo (echo.c)
      bench gateway      benchmark gRPC calls through the gateway with h2load, beside direct Wire calls
      bench loyalty      benchmark durable rewards and slip completions over Wire, group commit on and off
      bench gametables   benchmark a 100,000-table cleanup end to end and runtime events consumed per second
      bench staging      benchmark a 150,000-entity import through merge and diff, and override → diff latency
      version            print the version
      help               this text

    Run `croupier <command> --help` for a command's options.
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write("croupier: \(message)\n".data(using: .utf8)!)
    exit(2)
}

/// Whether a command line asks for help (`--help` or `-h` anywhere in it).
func asksForHelp(_ arguments: [String]) -> Bool {
    arguments.contains("--help") || arguments.contains("-h")
}

/// `croupier bench <name>`: each benchmark's help text and entry point.
let benchmarks: [String: (help: String, run: ([String]) async throws -> Int32)] = [
    "codec": ("""
        usage: croupier bench codec [--seconds S] [--out FILE]
          Encode/decode msg/s and MB/s for a ~40 B and a ~300 KB message, beside Python
          protobuf (upb) on the same bytes. Run from the repository root in release:
            swift run -c release croupier bench codec
          --seconds S   length of each timed run (default 1)
          --out FILE    where to record the table (default bench/results/codec.md)
        """, { try CodecBenchmark.run(arguments: $0) }),
    "storage": ("""
        usage: croupier bench storage [--seconds S] [--out FILE]
          Durable (synchronous=FULL) single-row transactions from 64 callers with group commit
          and with one commit each (same run), queue send+receive+delete, event-log append and tail.
          --seconds S   total time for the write comparison (default 3)
          --out FILE    where to record the table (default bench/results/storage.md)
        """, { try await StorageBenchmark.run(arguments: $0) }),
    "wire": ("""
        usage: croupier bench wire [--calls N] [--rounds N] [--shape CxI] [--callers KIND] [--server-loops N] [--echo-source FILE]
                                   [--grpcgo PEER | --no-grpcgo] [--out FILE]
          Unary calls/s, p50/p99 and CPU µs per call (server / client) at 1/16/64 in flight on 1 and
          4 connections (a task per caller), and 1 x 64 with a deadline on every call and with
          callers on the loop (`startUnary`, no tasks); streamed msg/s; server RSS with 1,000 idle
          connections. Beside the raw echo anchor built from --echo-source (default
          ../shared/anchors/echo.c) and the grpc-go 1.33 peer (its own client and server; built by
          scripts/grpcgo-peer from the anchors' source), alternating in the same run.
          --calls N         measured calls per shape (default 100,000; a quarter at 1 in flight)
          --rounds N        rounds per shape; the median is reported (default 3)
          --shape CxI       only this shape, e.g. 1x64 (`none`: streaming and memory only)
          --callers KIND    only rows whose callers are `tasks`, `deadline` (tasks, 5 s deadline each) or `loop`
          --server-loops N  event loops of the Wire server (default 1, like the echo server)
          --grpcgo PEER     a grpcgo-peer binary to use (default: scripts/grpcgo-peer builds one)
          --no-grpcgo       leave out the grpc-go column
          --out FILE        where to record the table (default bench/results/wire.md)
        """, { try await WireBenchmark.run(arguments: $0) }),
    "gateway": ("""
        usage: croupier bench gateway [--calls N] [--grpcgo PEER | --no-grpcgo] [--out FILE]
          h2load gRPC unary calls through the gateway to a Wire backend at -c 1 -m 1, -c 16 -m 8 and
          -c 16 -m 8 with a bearer token on every call, beside the same call made directly over Wire
          in the same run; fails if the gateway's /metrics shows any refused call. Gateway RSS under
          load and with 1,000 idle HTTP/2 connections. Beside them, h2load against the grpc-go 1.33
          peer's server, same shapes (scripts/grpcgo-peer builds it). Needs h2load (nghttp2-client) and curl.
          --calls N     calls per figure (default 100,000; a quarter at -c 1 -m 1)
          --grpcgo PEER a grpcgo-peer binary to use (default: scripts/grpcgo-peer builds one)
          --no-grpcgo   leave out the grpc-go column
          --out FILE    where to record the table (default bench/results/gateway.md)
        """, { try await GatewayBenchmark.run(arguments: $0) }),
    "loyalty": ("""
        usage: croupier bench loyalty [--calls N] [--engine sqlite|postgres] [--replicas 1,2,3] [--rounds N] [--out FILE]
          Durable ManualReward and CompleteRatingSlip calls/s and p50/p99 over Wire from 64
          concurrent callers to a loyalty server process, with group commit and without it
          (one fsync per call) in the same run.
          --engine postgres: durable ManualReward calls/s and p99 against N loyalty replicas on one
          throwaway PostgreSQL cluster, balanced by a ReplicaChannel, for each N of --replicas; beside
          them, the same store called in process (the same statements over libpq, no RPC) and the
          SQLite figure; --rounds N interleaved rounds (default 3), medians reported.
          Recorded in bench/results/loyalty-postgres.md.
          --calls N     calls per figure (default 20,000)
          --out FILE    where to record the table (default bench/results/loyalty.md)
        """, { try await LoyaltyBenchmark.run(arguments: $0) }),
    "gametables": ("""
        usage: croupier bench gametables [--tables N] [--events N] [--out FILE]
          A whole RGS → Games cleanup of N tables (default 100,000) on 20 servers, RGS and Games as
          their own processes, beside the same archive as bare SQLite batches; runtime events
          (default 200,000) consumed per second with a durable offset, batched and one per commit.
          --out FILE    where to record the table (default bench/results/gametables.md)
        """, { try await GameTablesBenchmark.run(arguments: $0) }),
    "staging": ("""
        usage: croupier bench staging [--entities N] [--overrides N] [--out FILE]
          A N-entity import (default 150,000) streamed over Wire to a staging process through merge and
          full diff (time, peak RSS), beside a bare SQLite bulk insert of the same rows; then N manual
          overrides (default 200) and their override → diff-change latency.
          --out FILE    where to record the table (default bench/results/staging.md)
        """, { try await StagingBenchmark.run(arguments: $0) }),
]

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case nil, "help", "--help", "-h":
    print(usage)
case "version", "--version":
    if asksForHelp(arguments) {
        print("usage: croupier version\n  Prints the version of this executable.")
    } else {
        print("croupier \(version)")
    }
case "bench":
    let rest = Array(arguments.dropFirst())
    if rest.isEmpty || rest.first == "help" || asksForHelp([rest[0]]) {
        print("usage: croupier bench <name> [options]\n  Benchmarks: \(benchmarks.keys.sorted().joined(separator: ", ")).")
        print("  Run them from the repository root on a release build; results are recorded under bench/results/.")
        print("  `croupier bench <name> --help` gives each one's options.")
        break
    }
    if let name = rest.first, let benchmark = benchmarks[name] {
        if asksForHelp(rest) {
            print(benchmark.help)
        } else {
            do { exit(try await benchmark.run(Array(rest.dropFirst()))) } catch { fail("\(error)") }
        }
        break
    }
    switch rest.first {
    case "loyalty-server":
        let args = Array(rest.dropFirst())
        do {
            try await LoyaltyBenchmark.serve(
                directory: args.first ?? ".", maxBatch: Int(args.dropFirst().first ?? "") ?? 256, database: args.dropFirst(2).first)
        } catch { fail("\(error)") }
    case "gateway-server":
        do { try await GatewayBenchmark.serve(backendPort: UInt16(rest.dropFirst().first ?? "0") ?? 0) } catch { fail("\(error)") }
    case "wire-server":
        do { try await WireBenchmark.serve(port: UInt16(rest.dropFirst().first ?? "0") ?? 0) } catch { fail("\(error)") }
    case "wire-floor":
        let args = Array(rest.dropFirst())
        guard let mode = EchoFloor.Mode(rawValue: args.dropFirst().first ?? "") else { fail("usage: croupier bench wire-floor PORT sync|async") }
        do { try await EchoFloor.serve(port: UInt16(args.first ?? "0") ?? 0, mode: mode) } catch { fail("\(error)") }
    default:
        fail("unknown benchmark '\(rest.first ?? "")'; available: \(benchmarks.keys.sorted().joined(separator: ", "))")
    }
case "up":
    if asksForHelp(arguments) {
        print("""
            usage: croupier up [--config FILE] [--replicas loyalty=3,staging=2]
              Starts every component as its own process, waits until each is ready, restarts a
              crashed one with backoff, and on Ctrl-C/SIGTERM stops them gracefully.
              Data directory ./var (CROUPIER_DATA_DIR); internal secret generated into it
              (CROUPIER_INTERNAL_SECRET). Components today: \(Configuration.components.joined(separator: ", ")).
              Replicas: "replicas": {"loyalty": 3} (--replicas, CROUPIER_LOYALTY_REPLICAS) starts three loyalty
              processes, which need a PostgreSQL database: "loyalty": {"database": "postgresql://…"}
              (CROUPIER_LOYALTY_DATABASE_URL). "addresses": {"loyalty": ["host:port", …]} calls replicas
              running elsewhere instead of starting any (docs/scale-out.md).
            """)
    } else {
        do { exit(try await Supervisor.run(arguments: Array(arguments.dropFirst()))) } catch { fail("\(error)") }
    }
case "token":
    if asksForHelp(arguments) {
        print("""
            usage: croupier token --sub ID [--perms a,b] [--roles r,s] [--ttl SECONDS] [--config FILE]
              Prints a token for `authorization: Bearer <token>`, signed with the gateway's secret
              (CROUPIER_JWT_SECRET, else the one generated into the data directory). --ttl defaults to 3600.
            """)
    } else {
        do { exit(try Tools.token(arguments: Array(arguments.dropFirst()))) } catch { fail("\(error)") }
    }
case "call":
    if arguments.count < 2 || asksForHelp(arguments) {
        print("""
            usage: croupier call [--addr HOST:PORT] --list [SERVICE]
                   croupier call [--addr HOST:PORT] --describe SYMBOL
                   croupier call [--addr HOST:PORT] [--token T | --sub ID --perms a,b] [--header k:v]... [--timeout S] METHOD ['{json}']
              Calls the gateway (default 127.0.0.1:7000, h2c) as any gRPC client does, learning types from its
              reflection service. METHOD is package.Service/Method. The request is the JSON argument, else stdin;
              a client-streaming method reads one JSON request per line of stdin. Each response message prints as
              one line of JSON. --sub/--perms mint a token with the configured secret, as `croupier token` does.
              A failed call prints its status, message and trailers on stderr and exits with the status code.
              TLS (h2): --tls checks the gateway against the system's roots, --ca FILE against FILE (e.g. the
              certificate `croupier cert` wrote), --insecure checks nothing.
            """)
    } else {
        do { exit(try CallTool.run(arguments: Array(arguments.dropFirst()))) } catch { fail("\(error)") }
    }
case "json":
    if arguments.count < 3 || asksForHelp(arguments) {
        print("""
            usage: croupier json to-json TYPE | to-binary TYPE [--ignore-unknown] [--descriptor-set FILE]
              A filter over stdin, one message per line, in the canonical proto3 JSON mapping.
              to-json: each line is a message's binary encoding in base64; prints its JSON.
              to-binary: each line is JSON; prints the binary encoding in base64. Unknown fields are
              refused unless --ignore-unknown. TYPE is a full name (croupier.loyalty.v1.LedgerEntry),
              or - for lines of TYPE<tab>MESSAGE. A line that does not map prints `error: …` and the
              exit status is 1. --descriptor-set adds the messages of a protoc --descriptor_set_out file.
            """)
    } else {
        do { exit(try JSONTool.run(arguments: Array(arguments.dropFirst()))) } catch { fail("\(error)") }
    }
case "cert":
    if asksForHelp(arguments) {
        print("""
            usage: croupier cert [--dir DIR] [--config FILE]
              Writes gateway-cert.pem and gateway-key.pem (self-signed P-256 for localhost and 127.0.0.1)
              into DIR (default: the data directory) and prints the config lines that enable TLS.
            """)
    } else {
        do { exit(try Tools.cert(arguments: Array(arguments.dropFirst()))) } catch { fail("\(error)") }
    }
case "serve":
    let rest = Array(arguments.dropFirst())
    if rest.isEmpty || asksForHelp(rest) {
        print("""
            usage: croupier serve <component> [--config FILE]
              Runs one component in the foreground until SIGTERM/SIGINT, then drains.
              Components: \(Configuration.components.joined(separator: ", ")); ports from the config
              file ("ports": {"interop": 7100}) or CROUPIER_<COMPONENT>_PORT.
            """)
    } else {
        Posix.raiseDescriptorLimit()  // one descriptor per client connection; the default soft limit is 1024
        do { exit(try await Serve.run(component: rest[0], arguments: Array(rest.dropFirst()))) } catch { fail("\(error)") }
    }
default:
    fail("unknown command '\(arguments[0])'\n\(usage)")
}
