import Foundation
@testable import Storage
import TestSupport
import XCTest

/// A replica whose host vanishes (a cut link, a powered-off machine) while
/// its session holds a lock must not hold it for the kernel's retransmission
/// timeout (about 15 minutes on Linux when the server has unacknowledged
/// data for it, which TCP keepalives never probe). Croupier's connections
/// ask the server, per session, to give up on them within seconds.
final class DeadPeerTests: XCTestCase {
    func testASessionLockOfAVanishedHostIsReleasedWithinSeconds() throws {
        guard TestNetwork.isAvailable else { throw XCTSkip("needs root and iproute2 to make network namespaces") }
        try XCTSkipIf(TestEngine.isPostgres, "makes a cluster of its own: run once, in the first pass")
        let net = try TestNetwork(hosts: ["pg", "peer"])
        defer { net.tearDown() }
        let cluster = try PostgresCluster(host: net.address("pg"), namespace: net.namespace("pg"), clients: net.cidr)
        defer { cluster.stop() }
        let database = try cluster.createDatabase()

        // The peer: a session, with the settings every Croupier connection uses, that takes a
        // session lock (as a singleton or a write running alone does), listens, and stays idle.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        holder.arguments = Array(net.on("peer", [cluster.tool("psql"), PGConnection.withDeadPeerDetection(database), "-X", "-q"]).dropFirst())
        let input = Pipe()
        holder.standardInput = input
        holder.standardOutput = FileHandle.nullDevice
        holder.standardError = FileHandle.nullDevice
        try holder.run()
        defer { kill(holder.processIdentifier, SIGKILL) }
        input.fileHandleForWriting.write(Data((PGConnection.sessionSettings + ";\nSELECT pg_advisory_lock(4242);\nLISTEN dead_peer;\n").utf8))
        var held = false
        for _ in 0..<100 where !held {
            held = try cluster.psql(database, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted")
                .contains(" 1\n")
            if !held { Thread.sleep(forTimeInterval: 0.1) }
        }
        XCTAssertTrue(held, "the peer never took its lock")

        // The peer's host vanishes, and the server then has something to send it: from here on its
        // socket holds unacknowledged data, and only a send timeout can end the session.
        try net.link("peer", up: false)
        _ = try cluster.psql(database, "NOTIFY dead_peer, 'anyone there?'")

        // Another replica waits for the lock; it must get it once the server gives up on the peer.
        let taken = try cluster.psql(database, "SET lock_timeout = '60s'; SELECT pg_advisory_lock(4242); SELECT 'taken'")
        XCTAssertTrue(taken.contains("taken"), taken)
    }
}
