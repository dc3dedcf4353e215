// swift-tools-version:6.0
// Croupier has no package dependencies, by design: only the toolchain's
// Foundation/Dispatch/XCTest and C system libraries through systemLibrary
// targets. Never add a package dependency here.
import PackageDescription

/// Nonisolated async functions run on their caller's executor (no executor
/// switch per call): Wire handlers and callers stay on the event-loop thread.
let callerExecutor: [SwiftSetting] = [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]

let package = Package(
    name: "Croupier",
    products: [
        .executable(name: "croupier", targets: ["Croupier"]),
        .executable(name: "croupier-protogen", targets: ["CroupierProtoGen"]),
    ],
    targets: [
        // C system libraries (Debian providers named so SwiftPM can say what to install).
        .systemLibrary(
            name: "CNGHTTP2", path: "Sources/CNGHTTP2", pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(
            name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),
        .systemLibrary(
            name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(
            name: "CLibPQ", path: "Sources/CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),

        // epoll and eventfd, which Swift's Glibc module does not expose.
        .target(name: "CLinux", path: "Sources/CLinux"),

        // The protocol: protobuf codec, RPC model, frames, epoll transport, generated standard protos.
        .target(name: "Wire", dependencies: ["CLinux", "COpenSSL"], path: "Sources/Wire", swiftSettings: callerExecutor),

        // Storage on SQLite (group commit) or PostgreSQL (libpq): durable FIFO queue, event log, consumer offsets.
        .target(name: "Storage", dependencies: ["CSQLite", "CLibPQ", "COpenSSL", "CLinux"], path: "Sources/Storage"),

        // A throwaway PostgreSQL cluster (initdb, a free port, stopped at exit) for tests and `croupier bench`.
        .target(name: "LocalPostgres", path: "Sources/LocalPostgres"),

        // The gRPC-compatible HTTP/2 front door: nghttp2 + OpenSSL, auth, rate limits, routing to Wire services.
        .target(
            name: "Gateway", dependencies: ["Wire", "CNGHTTP2", "COpenSSL"], path: "Sources/Gateway",
            exclude: ["Console/site"],  // embedded as ConsoleAssets.swift (scripts/embed-console)
            swiftSettings: callerExecutor),

        // Seed 001: rating slips with atomic accrual, idempotent rewards, tiers, audited ledger.
        .target(
            name: "LoyaltyService", dependencies: ["Wire", "Storage"], path: "Sources/LoyaltyService",
            swiftSettings: callerExecutor),

        // Seeds 003 and 002: RGS → Games table cleanup over Wire, async operations, purge; runtime events.
        .target(
            name: "GameTablesService", dependencies: ["Wire", "Storage"], path: "Sources/GameTablesService",
            swiftSettings: callerExecutor),

        // Seed 000: import → staging → queued diff, overrides, locks, deploy, live events.
        .target(
            name: "StagingService", dependencies: ["Wire", "Storage"], path: "Sources/StagingService",
            swiftSettings: callerExecutor),

        // Development-time code generator: FileDescriptorSet -> Swift.
        .target(name: "ProtoGen", dependencies: ["Wire"], path: "Sources/ProtoGen"),
        .executableTarget(
            name: "CroupierProtoGen", dependencies: ["ProtoGen"], path: "Sources/CroupierProtoGen"),

        // The one executable: serve, up, token, bench ...
        .executableTarget(
            name: "Croupier", dependencies: ["Wire", "Storage", "Gateway", "LoyaltyService", "GameTablesService", "StagingService", "LocalPostgres", "CLibPQ"],
            path: "Sources/Croupier", swiftSettings: callerExecutor),

        // Helpers shared by the test targets that run real processes.
        .target(name: "TestSupport", dependencies: ["Wire", "Storage", "LocalPostgres"], path: "Tests/TestSupport", swiftSettings: callerExecutor),
        .testTarget(name: "WireTests", dependencies: ["Wire", "TestSupport"], path: "Tests/WireTests"),
        .testTarget(
            name: "StorageTests", dependencies: ["Storage", "CSQLite", "StorageCrashHelper", "TestSupport"], path: "Tests/StorageTests"),
        // Child process for StorageTests' SIGKILL crash tests.
        .executableTarget(name: "StorageCrashHelper", dependencies: ["Storage"], path: "Tests/StorageCrashHelper"),
        .testTarget(
            name: "LauncherTests",
            dependencies: ["Wire", "Storage", "Croupier", "LoyaltyService", "GameTablesService", "StagingService", "TestSupport"], path: "Tests/LauncherTests",
            swiftSettings: callerExecutor),
        .testTarget(
            name: "LoyaltyTests", dependencies: ["LoyaltyService", "Wire", "Storage", "TestSupport"],
            path: "Tests/LoyaltyTests", swiftSettings: callerExecutor),
        .testTarget(
            name: "GameTablesTests", dependencies: ["GameTablesService", "Wire", "Storage", "TestSupport"],
            path: "Tests/GameTablesTests", swiftSettings: callerExecutor),
        .testTarget(
            name: "StagingTests", dependencies: ["StagingService", "Wire", "Storage", "TestSupport"],
            path: "Tests/StagingTests", swiftSettings: callerExecutor),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "Wire", "TestSupport"], path: "Tests/GatewayTests"),
        .testTarget(name: "ProtoGenTests", dependencies: ["ProtoGen"], path: "Tests/ProtoGenTests"),
        .testTarget(
            name: "SystemLibraryTests", dependencies: ["CNGHTTP2", "COpenSSL", "CSQLite", "CLibPQ"],
            path: "Tests/SystemLibraryTests"),
    ]
)
