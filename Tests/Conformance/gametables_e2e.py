#!/usr/bin/env python3
"""GameTablesService end to end through the gateway with Python grpcio:
load an RGS estate and the Games tables, kick off a cleanup, poll the run,
then read the Games operations and table states; publish runtime events
and read the consumer's results.

  gametables_e2e.py HOST:PORT --jwt-secret SECRET

Prints one line per check and exits 1 if any failed.
"""
import json
import os
import sys
import time
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

testkit.compile_stubs("gametables_protos", [("croupier/gametables/v1/gametables.proto", "gametables")])
from gametables_protos import gametables_pb2 as pb, gametables_pb2_grpc as rpc  # noqa: E402

RUN = uuid.uuid4().hex[:8]
BASE = (int(uuid.uuid4().int % 1000) + 1) * 100000  # back-office ids unique to this run


def wait_for(what, fn, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Checks:
    def __init__(self, target, secret):
        channel = grpc.insecure_channel(target)
        self.rgs = rpc.RgsCleanupStub(channel)
        self.games = rpc.GamesCleanupStub(channel)
        self.runtime = rpc.GameRuntimeStub(channel)
        claims = {"sub": "ops-" + RUN, "perms": [], "exp": int(time.time()) + 600}
        self.md = [("authorization", "Bearer " + testkit.token(secret, claims))]
        self.env = "env-" + RUN
        self.archive, self.delete, self.keep = [], [], []

    def needs_a_token(self):
        testkit.expect_error(lambda: self.rgs.ListEnvironments(pb.ListEnvironmentsRequest()), grpc.StatusCode.UNAUTHENTICATED)

    def load_estate_and_games_tables(self):
        records = [pb.EstateRecord(environment=pb.Environment(environment_id=self.env, required_currencies=["EUR"]))]
        for s in range(3):
            server = "%s-s%d" % (self.env, s)
            records.append(pb.EstateRecord(server=pb.Server(server_id=server, environment_id=self.env, active=True)))
            for t in range(300):
                bo = BASE + s * 1000 + t
                currency = "EUR" if t % 4 == 0 else "USD"
                records.append(pb.EstateRecord(table=pb.RgsTable(
                    table_id="%s-t%d" % (server, t), server_id=server, bo_id=bo, currency=currency, active=True)))
                if currency == "EUR":
                    self.keep.append(bo)
                elif t % 2 == 0:
                    self.archive.append(bo)
                    records.append(pb.EstateRecord(traffic=pb.Traffic(
                        table_id="%s-t%d" % (server, t), period="2026-10", rounds=5, ggr=12.5)))
                else:
                    self.delete.append(bo)
        summary = self.rgs.LoadEstate(iter(records), metadata=self.md)
        assert summary.servers == 3 and summary.tables == 900, summary
        tables = [pb.GameTable(id=bo, name="t%d" % bo, currency="X", active=True)
                  for bo in self.archive + self.delete + self.keep]
        loaded = self.games.LoadGameTables(iter(tables), metadata=self.md)
        assert loaded.tables == 900, loaded
        envs = self.rgs.ListEnvironments(pb.ListEnvironmentsRequest(), metadata=self.md)
        assert self.env in [e.environment_id for e in envs.environments], envs

    def kickoff_and_poll_the_run(self):
        run = self.rgs.KickoffCleanup(pb.KickoffCleanupRequest(run_id="e2e-" + RUN), metadata=self.md)
        assert time.strftime("%H:%M:%S", time.gmtime(run.archived_at_ms / 1000)) == "11:11:11", run.archived_at_ms
        self.archived_at = run.archived_at_ms

        def finished():
            r = self.rgs.GetCleanupRun(pb.GetCleanupRunRequest(run_id="e2e-" + RUN), metadata=self.md)
            return r if r.state in (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED) else None
        self.run = wait_for("the cleanup run", finished)
        mine = [e for e in self.run.environments if e.environment_id == self.env][0]
        assert [s.state for s in mine.servers] == [pb.JOB_STATE_DONE] * 3, mine
        assert sum(s.to_archive for s in mine.servers) == len(self.archive), mine
        assert sum(s.to_delete for s in mine.servers) == len(self.delete), mine
        assert all(s.slices_acknowledged == s.slices for s in mine.servers), mine
        self.operations = [op for s in mine.servers for op in s.operation_ids]
        assert len(self.operations) == 6, self.operations  # per server: one delete slice, one archive slice

    def games_operations_deferred_and_tables_archived(self):
        def deferred():
            ops = [self.games.GetOperation(pb.GetOperationRequest(operation_id=o), metadata=self.md) for o in self.operations]
            return ops if all(op.status == pb.OPERATION_STATUS_DEFERRED for op in ops) else None
        ops = wait_for("the Games operations", deferred)
        assert sorted(i for op in ops for i in op.affected_ids) == sorted(self.archive + self.delete)
        tables = self.games.GetGameTables(pb.GetGameTablesRequest(ids=self.archive + self.delete + self.keep),
                                          metadata=self.md).tables
        by_id = {t.id: t for t in tables}
        for bo in self.archive + self.delete:
            assert not by_id[bo].active and by_id[bo].archived_at_ms == self.archived_at, by_id[bo]
        for bo in self.keep:
            assert by_id[bo].active, by_id[bo]
        versions = self.games.ListVersions(pb.ListVersionsRequest(table_id=self.archive[0]), metadata=self.md)
        assert [v.event for v in versions.versions] == ["archive"], versions
        # The version row names whoever kicked the run off, through RGS, with the kickoff's correlation id.
        assert versions.versions[0].actor == "ops-" + RUN and versions.versions[0].correlation_id, versions
        rgs_tables = self.rgs.ListRgsTables(pb.ListRgsTablesRequest(server_id=self.env + "-s0"), metadata=self.md).tables
        assert all(t.archived_at_ms == self.archived_at for t in rgs_tables if not t.active)
        self.deferred = ops

    def purge_hard_deletes(self):
        archive_op = [op for op in self.deferred if op.action == pb.CLEANUP_ACTION_ARCHIVE][0]
        testkit.expect_error(lambda: self.games.PurgeArchived(
            pb.PurgeArchivedRequest(operation_id=archive_op.operation_id), metadata=self.md),
            grpc.StatusCode.FAILED_PRECONDITION, "ARCHIVE")
        first = [op for op in self.deferred if op.action == pb.CLEANUP_ACTION_DELETE][0]
        op = self.games.PurgeArchived(pb.PurgeArchivedRequest(operation_id=first.operation_id), metadata=self.md)
        assert op.status == pb.OPERATION_STATUS_PROCESSED and op.purged == len(op.affected_ids), op
        run = self.games.PurgeCleanupRun(pb.PurgeCleanupRunRequest(run_id="e2e-" + RUN), metadata=self.md)
        assert run.archive_operations_kept == 3 and len(run.operations) == 3, run
        assert run.purged == len(self.delete) - len(op.affected_ids), run
        gone = self.games.GetGameTables(pb.GetGameTablesRequest(ids=self.delete), metadata=self.md)
        assert not gone.tables and sorted(gone.missing_ids) == sorted(self.delete), gone
        kept = self.games.GetGameTables(pb.GetGameTablesRequest(ids=self.archive), metadata=self.md)
        assert len(kept.tables) == len(self.archive), "ARCHIVE operations' tables stay"

    def over_500_ids_refused(self):
        testkit.expect_error(lambda: self.games.CleanupGameTables(pb.CleanupGameTablesRequest(
            request_id="big-" + RUN, ids=list(range(1, 502)), action=pb.CLEANUP_ACTION_ARCHIVE, archived_at_ms=1),
            metadata=self.md), grpc.StatusCode.INVALID_ARGUMENT, "500")

    def runtime_events_consumed(self):
        game = "game-" + RUN
        self.runtime.RegisterGame(pb.RegisterGameRequest(game_id=game), metadata=self.md)

        def stats(p1, p2):
            return json.dumps([{"user_id": "p1", "planets": p1, "population": 10, "ships_built": 1},
                               {"user_id": "p2", "planets": p2, "population": 10, "ships_built": 1}])
        events = [pb.RuntimeEvent(kind="runtime_snapshot_update",
                                  fields={"game_id": game, "current_turn": str(t), "player_turn_stats": stats(t, 6 - t)})
                  for t in range(1, 6)]
        events.append(pb.RuntimeEvent(kind="bogus", fields={"game_id": game}))
        events.append(pb.RuntimeEvent(kind="game_finished",
                                      fields={"game_id": game, "finished_at_ms": "1795400000000", "player_turn_stats": stats(7, 2)}))
        ids = self.runtime.PublishRuntimeEvents(pb.PublishRuntimeEventsRequest(events=events), metadata=self.md).entry_ids
        assert len(ids) == 7, ids
        g = wait_for("the game to finish", lambda: (lambda g: g if g.evaluated else None)(
            self.runtime.GetGame(pb.GetGameRequest(game_id=game), metadata=self.md)))
        assert g.status == pb.GAME_STATUS_FINISHED and g.finished_at_ms == 1795400000000, g
        assert [s.user_id for s in g.standings] == ["p1", "p2"], g.standings
        players = {p.user_id: p for p in self.runtime.GetGameStats(pb.GetGameRequest(game_id=game), metadata=self.md).players}
        assert players["p1"].initial_planets == 1 and players["p1"].max_planets == 7, players["p1"]
        assert players["p2"].initial_planets == 5 and players["p2"].max_planets == 5, players["p2"]
        status = self.runtime.GetConsumerStatus(pb.GetConsumerStatusRequest(), metadata=self.md)
        assert status.lag == 0 and status.skipped >= 1, status


NAMES = [
    "needs_a_token",
    "load_estate_and_games_tables",
    "kickoff_and_poll_the_run",
    "games_operations_deferred_and_tables_archived",
    "purge_hard_deletes",
    "over_500_ids_refused",
    "runtime_events_consumed",
]


def main():
    testkit.run_checks("gametables", Checks, NAMES)


if __name__ == "__main__":
    main()
