#!/usr/bin/env python3
"""LoyaltyService end to end, as a user's gRPC client sees it: Python grpcio
through the gateway (JWT auth, permissions, rate limit, correlation ids) to
the loyalty process and its database.

  loyalty_e2e.py HOST:PORT --jwt-secret SECRET

Prints one line per check and exits 1 if any failed.
"""
import os
import sys
import time
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

testkit.compile_stubs("loyalty_protos", [("croupier/loyalty/v1/loyalty.proto", "loyalty")])
from loyalty_protos import loyalty_pb2 as pb, loyalty_pb2_grpc as rpc  # noqa: E402

RUN = uuid.uuid4().hex[:8]  # keeps ids unique when the script runs twice against one database


class Checks:
    def __init__(self, target, secret):
        self.stub = rpc.LoyaltyServiceStub(grpc.insecure_channel(target))
        self.secret = secret
        self.player = "player-%s" % RUN
        self.staff = "staff-%s" % RUN

    def auth(self, sub, perms, correlation=None, extra=()):
        claims = {"sub": sub, "perms": perms, "exp": int(time.time()) + 600}
        md = [("authorization", "Bearer " + testkit.token(self.secret, claims))]
        if correlation:
            md.append(("x-correlation-id", correlation))
        return md + list(extra)

    def reward(self, points, reason, staff=None, staff_id=None, reward_id="", correlation=None, extra=()):
        staff = staff or self.staff
        return self.stub.ManualReward(pb.ManualRewardRequest(
            player_id=self.player, points=points, reason=reason, staff_id=staff_id or staff, reward_id=reward_id),
            metadata=self.auth(staff, ["loyalty:award"], correlation, extra))

    def staff_rewards_and_player_reads_own_balance(self):
        corr = "e2e-%s-reward" % RUN
        r = self.reward(250, "Welcome back bonus", reward_id="welcome-" + RUN, correlation=corr)
        assert r.accrual.points == 250 and not r.accrual.replay, r
        assert r.entry.correlation_id == corr, r.entry
        mine = self.auth(self.player, [])
        account = self.stub.GetPlayerLoyalty(pb.GetPlayerLoyaltyRequest(player_id=self.player), metadata=mine)
        assert account.balance == 250 and account.tier == pb.BRONZE and account.tier_progress == 25, account
        ledger = self.stub.ListLedger(pb.ListLedgerRequest(player_id=self.player), metadata=mine)
        assert len(ledger.entries) == 1, ledger
        row = ledger.entries[0]
        assert row.correlation_id == corr, "the client's correlation id is on the ledger row: %r" % row.correlation_id
        assert row.staff_id == self.staff and row.transaction_type == pb.MANUAL_BONUS, row
        assert (row.balance_before, row.balance_after) == (0, 250), row

    def retry_is_a_replay(self):
        r = self.reward(250, "Welcome back bonus", reward_id="welcome-" + RUN)
        assert r.accrual.replay, r

    def player_cannot_read_another(self):
        testkit.expect_error(lambda: self.stub.GetPlayerLoyalty(
            pb.GetPlayerLoyaltyRequest(player_id="someone-else"), metadata=self.auth(self.player, [])),
            grpc.StatusCode.PERMISSION_DENIED)

    def player_cannot_award(self):
        testkit.expect_error(lambda: self.stub.ManualReward(pb.ManualRewardRequest(
            player_id=self.player, points=5000, reason="I deserve this one", staff_id=self.player),
            metadata=self.auth(self.player, [])), grpc.StatusCode.PERMISSION_DENIED)

    def no_token(self):
        testkit.expect_error(lambda: self.stub.GetPlayerLoyalty(pb.GetPlayerLoyaltyRequest(player_id=self.player)),
                             grpc.StatusCode.UNAUTHENTICATED)

    def spoofed_staff_id(self):
        testkit.expect_error(lambda: self.reward(100, "Covering for my manager", staff_id="manager-1"),
                             grpc.StatusCode.PERMISSION_DENIED, "not the caller")

    def spoofed_principal_header_is_stripped(self):
        # The client claims to be the manager in the gateway's own header; the gateway strips it.
        testkit.expect_error(lambda: self.reward(
            100, "Covering for my manager", staff_id="manager-1", extra=[("x-croupier-principal", "manager-1")]),
            grpc.StatusCode.PERMISSION_DENIED)

    def validation(self):
        testkit.expect_error(lambda: self.reward(10, "short"), grpc.StatusCode.INVALID_ARGUMENT, "reason")
        testkit.expect_error(lambda: self.reward(10001, "Too generous a reward"), grpc.StatusCode.INVALID_ARGUMENT)
        testkit.expect_error(lambda: self.reward(-5000, "Takes more than there is"),
                             grpc.StatusCode.FAILED_PRECONDITION)

    def rate_limit_hint_is_true(self):
        # The end-to-end gateway config sets ManualReward to 10 per 3 s (the default is 10 per 60 s);
        # the loyalty service enforces it, the one place that can tell a replay from a new award.
        staff = "busy-%s" % RUN
        for i in range(10):
            self.reward(1, "Quick reward number %d" % i, staff=staff, reward_id="busy-%s-%d" % (RUN, i))
        e = testkit.expect_error(lambda: self.reward(1, "One reward too many", staff=staff),
                                 grpc.StatusCode.RESOURCE_EXHAUSTED)
        hint = int(dict(e.trailing_metadata() or []).get("retry-after-ms", "-1"))
        assert 0 < hint <= 3000 and ("retry in %d ms" % hint) in e.details(), (hint, e.details())
        # At the limit, a replay of an issued reward is answered with the original entry.
        again = self.reward(1, "Quick reward number 3", staff=staff, reward_id="busy-%s-3" % RUN)
        assert again.accrual.replay, again
        # Waiting for the hint is enough: nobody refuses the next call.
        time.sleep(hint / 1000.0)
        r = self.reward(1, "One reward too many", staff=staff)
        assert not r.accrual.replay, r

    def slip_completion_accrues(self):
        pit = self.auth("pit-%s" % RUN, ["loyalty:slip"])
        slip_id = "e2e-slip-" + RUN
        started = self.stub.StartRatingSlip(pb.StartRatingSlipRequest(
            slip_id=slip_id, player_id=self.player, table_id="bj-1",
            game_settings=pb.GameSettings(house_edge_percent=2, decisions_per_hour=60, points_per_theoretical_win=1),
            average_bet=100), metadata=pit)
        assert started.slip.status == pb.OPEN, started
        done = self.stub.CompleteRatingSlip(pb.CompleteRatingSlipRequest(slip_id=slip_id, duration_seconds=3600),
                                            metadata=pit)
        assert done.accrual.points == 120 and done.slip.status == pb.CLOSED, done
        again = self.stub.CompleteRatingSlip(pb.CompleteRatingSlipRequest(slip_id=slip_id), metadata=pit)
        assert again.accrual.replay and again.accrual.ledger_entry_id == done.accrual.ledger_entry_id, again

    def admin_verifies_and_exports(self):
        admin = self.auth("auditor-%s" % RUN, ["loyalty:admin"])
        v = self.stub.VerifyBalance(pb.VerifyBalanceRequest(), metadata=admin)
        assert v.consistent and v.players_checked >= 1, v
        rows = list(self.stub.ExportLedger(pb.ExportLedgerRequest(player_id=self.player), metadata=admin))
        assert [r.points for r in rows] == [250] + [1] * 11 + [120], [r.points for r in rows]
        testkit.expect_error(lambda: self.stub.VerifyBalance(pb.VerifyBalanceRequest(),
                                                             metadata=self.auth(self.player, [])),
                             grpc.StatusCode.PERMISSION_DENIED)


NAMES = [
    "staff_rewards_and_player_reads_own_balance",
    "retry_is_a_replay",
    "player_cannot_read_another",
    "player_cannot_award",
    "no_token",
    "spoofed_staff_id",
    "spoofed_principal_header_is_stripped",
    "validation",
    "rate_limit_hint_is_true",
    "slip_completion_accrues",
    "admin_verifies_and_exports",
]


def main():
    testkit.run_checks("loyalty", Checks, NAMES)


if __name__ == "__main__":
    main()
