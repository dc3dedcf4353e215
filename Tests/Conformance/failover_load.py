#!/usr/bin/env python3
"""Load for the failover test: Python grpcio clients drive loyalty rewards,
staging imports and overrides through the gateway while the test SIGKILLs
replicas behind it, then check what was acknowledged.

  failover_load.py HOST:PORT --jwt-secret SECRET --until FILE

Clients run until FILE exists. A call that fails is sent again with the same
identity (a reward's reward_id, an override's same fields), as a real client
would, until it is acknowledged; an acknowledged call must then be in the
system exactly once. At the end it prints one line of JSON:

  {"rewards": N, "ledger_rewards": N, "lost": [...], "duplicated": [...],
   "consistent": true, "overrides": N, "overrides_missing": [...],
   "imports": N, "imports_failed": [...], "event_streams_equal": true,
   "event_offsets_unique": true, "retries": N}
"""
import argparse
import collections
import faulthandler
import json
import os
import signal
import sys
import threading
import time
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

testkit.compile_stubs("loyalty_protos", [("croupier/loyalty/v1/loyalty.proto", "loyalty")])
testkit.compile_stubs("staging_protos", [("croupier/staging/v1/staging.proto", "staging")])
from loyalty_protos import loyalty_pb2 as lpb, loyalty_pb2_grpc as lrpc  # noqa: E402
from staging_protos import staging_pb2 as spb, staging_pb2_grpc as srpc  # noqa: E402

RUN = uuid.uuid4().hex[:6]
START = time.time()
# A test that gives up on this process sends SIGUSR1 first: every thread's stack goes to stderr.
faulthandler.register(signal.SIGUSR1, all_threads=True)


def progress(what):
    """One line on stderr per phase, so a run that hangs shows where."""
    print("[failover_load +%.1fs] %s" % (time.time() - START, what), file=sys.stderr, flush=True)
PLAYERS = ["fo-%s-p%d" % (RUN, i) for i in range(8)]  # shared by every client: contention on each player's row
GAME = "fo-" + RUN
# What a client retries: the replica or the gateway's link to it went away, or the call timed out.
TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL,
             grpc.StatusCode.UNKNOWN, grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED}


class Load:
    def __init__(self, target, secret, until):
        self.channel = grpc.insecure_channel(target)
        self.loyalty = lrpc.LoyaltyServiceStub(self.channel)
        self.staging = srpc.StagingServiceStub(self.channel)
        self.secret = secret
        self.until = until
        self.lock = threading.Lock()
        self.rewards = {}      # reward_id -> (player, points, entry_id)
        self.overrides = {}    # slug -> value
        self.override_acks = collections.defaultdict(list)  # slug -> [(value, acknowledged at, attempts)]
        self.imports = []      # run ids acknowledged
        self.retries = 0

    def md(self, sub, perms):
        claims = {"sub": sub, "perms": perms, "exp": int(time.time()) + 3600}
        return [("authorization", "Bearer " + testkit.token(self.secret, claims))]

    def stop(self):
        return os.path.exists(self.until)

    def retry(self, call, what):
        """`call()` until it succeeds; a non-transient error is a failure of the test."""
        delay = 0.05
        for attempt in range(400):
            try:
                return call()
            except grpc.RpcError as e:
                if e.code() not in TRANSIENT:
                    raise AssertionError("%s: %s %s" % (what, e.code(), e.details()))
                if attempt % 20 == 19:
                    progress("%s: attempt %d failed: %s %s" % (what, attempt + 1, e.code(), e.details()))
                with self.lock:
                    self.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("%s: still failing after 400 attempts" % what)

    def rewarder(self, k):
        staff = "fo-staff-%s-%d" % (RUN, k)
        md = self.md(staff, ["loyalty:award"])
        i = 0
        while not self.stop():
            player = PLAYERS[(k + i) % len(PLAYERS)]
            reward_id = "fo-%s-%d-%d" % (RUN, k, i)
            points = 1 + (k * 7 + i) % 40
            request = lpb.ManualRewardRequest(player_id=player, points=points, reason="Failover goodwill reward",
                                              staff_id=staff, reward_id=reward_id)
            r = self.retry(lambda: self.loyalty.ManualReward(request, metadata=md, timeout=10), "reward " + reward_id)
            with self.lock:
                self.rewards[reward_id] = (player, points, r.entry.entry_id)
            i += 1

    def importer(self):
        md = self.md("fo-curator", ["staging:read", "staging:write"])
        n = 0
        while not self.stop():
            def upload():
                def parts():
                    yield spb.ImportGameRequest(start=spb.ImportStart(game_slug=GAME))
                    yield spb.ImportGameRequest(batch=spb.EntityBatch(entities=[
                        spb.EntityInput(entity_type="card", slug="c%d" % i,
                                        fields={"name": "Card %d v%d" % (i, n), "expansion": "set-%d" % (i % 4)})
                        for i in range(300)]))
                return self.staging.ImportGame(parts(), metadata=md, timeout=20)
            try:
                r = upload()
                with self.lock:
                    self.imports.append(r.import_run_id)
            except grpc.RpcError as e:
                # One import per game at a time: FAILED_PRECONDITION while another runs is expected.
                if e.code() not in TRANSIENT and e.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
            n += 1
            time.sleep(0.3)

    def overrider(self):
        md = self.md("fo-editor", ["staging:read", "staging:write"])
        i = 0
        while not self.stop():
            slug = "c%d" % (i % 300)
            value = "override-%s-%d" % (RUN, i)
            request = spb.CreateOverrideRequest(game_slug=GAME, entity_type="card", slug=slug, fields={"rarity": value})
            try:
                sent = time.time()
                before = self.retries
                self.retry(lambda: self.staging.CreateOverride(request, metadata=md, timeout=10), "override " + slug)
                with self.lock:
                    self.overrides[slug] = value
                    self.override_acks[slug].append((value, round(sent, 3), round(time.time(), 3), self.retries - before))
            except AssertionError as e:
                # NOT_FOUND until the first import has merged the card.
                if "NOT_FOUND" not in str(e):
                    raise
                time.sleep(0.1)
            i += 1

    def run(self, rewarders):
        threads = [threading.Thread(target=self.rewarder, args=(k,)) for k in range(rewarders)]
        threads += [threading.Thread(target=self.importer), threading.Thread(target=self.overrider)]
        errors = []

        def guard(t):
            try:
                t._target(*t._args)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        wrapped = [threading.Thread(target=guard, args=(t,)) for t in threads]
        for t in wrapped:
            t.start()
        for t in wrapped:
            t.join()
        return errors

    def verify(self):
        progress("load stopped: %d rewards, %d overrides, %d imports, %d retries; checking" % (
            len(self.rewards), len(self.overrides), len(self.imports), self.retries))
        admin = self.md("fo-auditor", ["loyalty:admin", "loyalty:view_all"])
        by_entry = {e.entry_id: e for e in self.retry(
            lambda: list(self.loyalty.ExportLedger(lpb.ExportLedgerRequest(), metadata=admin, timeout=60)), "export")}
        # Lost: acknowledged, but its entry is not in the ledger. Duplicated: one reward's key on two entries.
        lost = [r for r, (_, _, entry) in self.rewards.items() if entry not in by_entry]
        keys = collections.Counter(e.idempotency_key for e in by_entry.values()
                                   if e.staff_id.startswith("fo-staff-%s-" % RUN))
        duplicated = [k for k, n in keys.items() if n > 1]
        verify = self.retry(lambda: self.loyalty.VerifyBalance(lpb.VerifyBalanceRequest(), metadata=admin, timeout=60), "verify")
        balances_ok = True
        for p in PLAYERS:
            acct = self.retry(lambda: self.loyalty.GetPlayerLoyalty(lpb.GetPlayerLoyaltyRequest(player_id=p),
                                                                     metadata=admin, timeout=10), "account")
            expected = sum(points for (player, points, _) in self.rewards.values() if player == p)
            if acct.balance != expected:
                balances_ok = False
        progress("ledger and balances checked")
        reader = self.md("fo-reader", ["staging:read"])
        missing = []
        for slug, value in self.overrides.items():
            e = self.retry(lambda: self.staging.GetEntity(spb.GetEntityRequest(game_slug=GAME, entity_type="card", slug=slug),
                                                          metadata=reader, timeout=10), "entity")
            if e.fields.get("rarity") != value:
                # What a failure needs to be traced: when each override of the card was sent and acknowledged
                # (and how many retries it took), and when the card's entity-change events were written.
                changes = [(ev.offset, ev.created_at_ms) for ev in self.retry(
                    lambda: list(self.staging.WatchEvents(spb.WatchEventsRequest(game_slug=GAME, until_caught_up=True),
                                                          metadata=reader, timeout=60)), "events")
                    if ev.type == "entity-change" and ev.details.get("slug") == slug]
                missing.append("%s: acknowledged %s, found %s; acks %s; entity-change events %s" % (
                    slug, value, e.fields.get("rarity"), self.override_acks[slug], changes[-6:]))
        progress("overrides checked")
        failed = []
        for run_id in self.imports:
            for _ in range(120):
                r = self.retry(lambda: self.staging.GetImportRun(spb.GetImportRunRequest(import_run_id=run_id),
                                                                 metadata=reader, timeout=10), "run")
                if r.status in (spb.IMPORT_STATUS_SUCCEEDED, spb.IMPORT_STATUS_FAILED):
                    break
                time.sleep(0.5)
            if r.status != spb.IMPORT_STATUS_SUCCEEDED:
                progress("import %s ended %s" % (run_id, spb.ImportStatus.Name(r.status)))
                failed.append("%s %s %s" % (run_id, spb.ImportStatus.Name(r.status), r.error))
        progress("imports checked")
        streams = []
        for _ in range(3):  # the gateway spreads these over both staging replicas
            streams.append([(e.offset, e.type) for e in self.retry(
                lambda: list(self.staging.WatchEvents(spb.WatchEventsRequest(game_slug=GAME, until_caught_up=True),
                                                      metadata=reader, timeout=60)), "events")])
        # Events may still be appended while the streams are read (diffs of the last imports):
        # the streams must agree up to the end of the shortest.
        cut = min(s[-1][0] if s else 0 for s in streams)
        streams = [[e for e in s if e[0] <= cut] for s in streams]
        offsets = [o for o, _ in streams[0]]
        return {
            "rewards": len(self.rewards), "ledger_rewards": sum(keys.values()), "lost": lost[:10],
            "duplicated": duplicated[:10], "consistent": verify.consistent and balances_ok,
            "overrides": len(self.overrides), "overrides_missing": missing[:10],
            "imports": len(self.imports), "imports_failed": failed[:10],
            "events": len(offsets), "event_streams_equal": all(s == streams[0] for s in streams),
            "event_offsets_unique": offsets == sorted(set(offsets)), "retries": self.retries,
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--until", required=True)
    parser.add_argument("--rewarders", type=int, default=6)
    args = parser.parse_args()
    load = Load(args.target, args.jwt_secret.encode(), args.until)
    errors = load.run(args.rewarders)
    result = load.verify()
    result["errors"] = errors
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
