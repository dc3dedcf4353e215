#!/usr/bin/env python3
"""W3C trace context through the platform: calls made with a chosen
`traceparent` (and a `tracestate`), whose trace id the calling Swift test
then looks for in the log lines of every process the request reached: the
gateway's access log, loyalty's reward line, and staging's import, merge and
diff lines (the diff runs later, in a worker, under the import's trace).
An override made under a second trace gets its own diff under that trace.
Also a call with a malformed traceparent, which must get a new trace.

  trace_e2e.py HOST:PORT --jwt-secret SECRET --trace TRACE_ID --override-trace TRACE_ID --correlation ID
"""
import os
import sys
import time
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

testkit.compile_stubs("trace_staging_protos", [("croupier/staging/v1/staging.proto", "staging")])
testkit.compile_stubs("trace_loyalty_protos", [("croupier/loyalty/v1/loyalty.proto", "loyalty")])
testkit.compile_stubs("trace_gametables_protos", [("croupier/gametables/v1/gametables.proto", "gametables")])
from trace_staging_protos import staging_pb2 as spb, staging_pb2_grpc as srpc  # noqa: E402
from trace_loyalty_protos import loyalty_pb2 as lpb, loyalty_pb2_grpc as lrpc  # noqa: E402
from trace_gametables_protos import gametables_pb2 as gpb, gametables_pb2_grpc as grpc_gt  # noqa: E402

RUN = uuid.uuid4().hex[:8]


class Checks:
    def __init__(self, target, secret):
        channel = grpc.insecure_channel(target)
        self.staging = srpc.StagingServiceStub(channel)
        self.loyalty = lrpc.LoyaltyServiceStub(channel)
        self.rgs = grpc_gt.RgsCleanupStub(channel)
        self.games = grpc_gt.GamesCleanupStub(channel)
        self.secret = secret
        self.correlation = OPTIONS["--correlation"]
        self.traced = [("traceparent", "00-%s-%s-01" % (OPTIONS["--trace"], uuid.uuid4().hex[:16])), ("tracestate", "croupier=e2e"),
                       ("x-correlation-id", self.correlation)]

    def md(self, sub, perms):
        claims = {"sub": sub, "perms": perms, "exp": int(time.time()) + 600}
        return [("authorization", "Bearer " + testkit.token(self.secret, claims))]

    def an_import_and_its_diff_carry_the_trace(self):
        game = "trace-" + RUN
        md = self.md("trace-editor", ["staging:read", "staging:write"]) + self.traced

        def parts():
            yield spb.ImportGameRequest(start=spb.ImportStart(game_slug=game, options=spb.ImportOptions(source="trace")))
            yield spb.ImportGameRequest(batch=spb.EntityBatch(entities=[
                spb.EntityInput(entity_type="card", slug="card-%d" % i, fields={"name": "c", "expansion": "s"}) for i in range(500)]))
        self.staging.ImportGame(parts(), metadata=md)
        end = time.time() + 60
        while time.time() < end:
            try:
                self.staging.GetDiff(spb.GetDiffRequest(game_slug=game, page_size=1), metadata=md)
                return
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            time.sleep(0.2)
        raise AssertionError("the import's diff never came")

    def an_override_and_its_diff_carry_the_overrides_trace(self):
        """The override's diff request waits in the queue; the worker that takes it logs under the override's trace."""
        game = "trace-" + RUN
        md = self.md("trace-editor", ["staging:read", "staging:write"])
        before = self.last_offset(game, md)
        self.staging.CreateOverride(spb.CreateOverrideRequest(game_slug=game, entity_type="card", slug="card-7", fields={"name": "traced"}),
                                    metadata=md + [("traceparent", "00-%s-%s-01" % (OPTIONS["--override-trace"], uuid.uuid4().hex[:16]))])
        end = time.time() + 60
        while time.time() < end:
            if any(e.type == "diff-change" and e.details["trigger"] == "MANUAL" for e in self.events(game, md, before)):
                return
            time.sleep(0.2)
        raise AssertionError("the override's diff never came")

    def events(self, game, md, after=0):
        return list(self.staging.WatchEvents(spb.WatchEventsRequest(game_slug=game, after_offset=after, until_caught_up=True), metadata=md))

    def last_offset(self, game, md):
        return max([e.offset for e in self.events(game, md)] or [0])

    def a_reward_carries_the_trace(self):
        staff = "trace-staff-" + RUN
        self.loyalty.ManualReward(lpb.ManualRewardRequest(
            player_id="trace-player-" + RUN, points=5, reason="Traced welcome bonus", staff_id=staff),
            metadata=self.md(staff, ["loyalty:award"]) + self.traced)

    def a_cleanup_run_carries_the_trace_from_rgs_to_games(self):
        # One server with two tables nobody plays: a DELETE slice goes through the outbox to Games, whose worker commits it.
        md = self.md("trace-ops-" + RUN, [])
        env, server, base = "trace-env-" + RUN, "trace-env-%s-s0" % RUN, 70_000_000 + int(RUN, 16) % 1_000_000 * 10
        records = [gpb.EstateRecord(environment=gpb.Environment(environment_id=env, required_currencies=["EUR"])),
                   gpb.EstateRecord(server=gpb.Server(server_id=server, environment_id=env, active=True))]
        records += [gpb.EstateRecord(table=gpb.RgsTable(table_id="%s-t%d" % (server, t), server_id=server, bo_id=base + t, currency="USD",
                                                        active=True)) for t in range(2)]
        self.rgs.LoadEstate(iter(records), metadata=md)
        self.games.LoadGameTables(iter([gpb.GameTable(id=base + t, name="t", currency="X", active=True) for t in range(2)]), metadata=md)
        run = "trace-run-" + RUN
        self.rgs.KickoffCleanup(gpb.KickoffCleanupRequest(run_id=run), metadata=md + self.traced)
        end = time.time() + 60
        while time.time() < end:
            r = self.rgs.GetCleanupRun(gpb.GetCleanupRunRequest(run_id=run), metadata=md)
            if r.state in (gpb.JOB_STATE_DONE, gpb.JOB_STATE_FAILED):
                assert r.state == gpb.JOB_STATE_DONE, r
                return
            time.sleep(0.2)
        raise AssertionError("the cleanup run never finished")

    def a_malformed_traceparent_starts_a_new_trace(self):
        md = self.md("trace-reader-" + RUN, []) + [("traceparent", "00-%s-0000000000000000-01" % ("ab" * 16)),
                                                     ("x-correlation-id", self.correlation + "-bad")]
        try:
            self.loyalty.GetPlayerLoyalty(lpb.GetPlayerLoyaltyRequest(player_id="trace-reader-" + RUN), metadata=md)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e  # a player with no points yet: the call itself is what counts


def take_options(names):
    """Removes `names` (each with its value) from the command line, which testkit reads; returns their values."""
    found = {}
    for name in names:
        i = sys.argv.index(name)
        found[name] = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    return found


if __name__ == "__main__":
    OPTIONS = take_options(["--trace", "--override-trace", "--correlation"])
    testkit.run_checks("trace", Checks, ["an_import_and_its_diff_carry_the_trace", "an_override_and_its_diff_carry_the_overrides_trace",
                                         "a_reward_carries_the_trace",
                                         "a_cleanup_run_carries_the_trace_from_rgs_to_games", "a_malformed_traceparent_starts_a_new_trace"])
