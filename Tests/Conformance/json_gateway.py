#!/usr/bin/env python3
"""JSON calls through the gateway, driven by curl as a person would:
POST /package.Service/Method with a proto3 JSON body, Connect's unary shape
back (an HTTP status mapped from the gRPC code, {"code", "message"} on error).

  json_gateway.py HOST:PORT --jwt-secret SECRET [--http1.1]

Over HTTP/2 (curl --http2-prior-knowledge) by default; with --http1.1 every
check runs again as plain `curl -d` sends it.

The same policies as gRPC: authentication, permissions, the rate limit with
its retry hint, correlation ids. A body that does not map is refused before
any backend sees it, and nothing is written.
"""
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

RUN = uuid.uuid4().hex[:8]
LOYALTY = "/croupier.loyalty.v1.LoyaltyService/"
CORRELATION = "json-e2e-corr-1"  # the Swift test looks for it in the access log


class Answer:
    def __init__(self, raw):
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.text = body.decode()
        self.json = json.loads(self.text) if self.headers.get("content-type") == "application/json" and self.text else None

    def __repr__(self):
        return "HTTP %d %s %s" % (self.status, self.headers, self.text[:300])


class Checks:
    def __init__(self, target, secret, http1):
        self.url = "http://" + target
        self.version = "--http1.1" if http1 else "--http2-prior-knowledge"
        self.secret = secret
        self.player = "json-player-" + RUN
        self.staff = "json-staff-" + RUN

    def token(self, sub, perms):
        return testkit.token(self.secret, {"sub": sub, "perms": perms, "exp": int(time.time()) + 600})

    def post(self, method, body, token=None, content_type="application/json", headers=()):
        """curl over h2c (prior knowledge) or HTTP/1.1, as `curl -d` would send it."""
        args = ["curl", "-sS", "-i", self.version, "-X", "POST", "-H", "content-type: " + content_type,
                "--data-binary", body if isinstance(body, str) else json.dumps(body)]
        if token:
            args += ["-H", "authorization: Bearer " + token]
        for h in headers:
            args += ["-H", h]
        return Answer(subprocess.run(args + [self.url + method], capture_output=True, check=True).stdout)

    def reward(self, points, reason, staff=None, **extra):
        staff = staff or self.staff
        body = {"playerId": self.player, "points": points, "reason": reason, "staffId": staff}
        body.update(extra)
        return self.post(LOYALTY + "ManualReward", body, self.token(staff, ["loyalty:award"]))

    def balance(self):
        a = self.post(LOYALTY + "GetPlayerLoyalty", {"playerId": self.player}, self.token(self.player, []))
        assert a.status == 200, a
        return int(a.json.get("balance", "0")), len(self.ledger())

    def ledger(self):
        a = self.post(LOYALTY + "ListLedger", {"player_id": self.player}, self.token(self.player, []))
        assert a.status == 200, a
        return a.json.get("entries", [])

    def a_reward_and_its_balance_in_json(self):
        a = self.post(LOYALTY + "ManualReward",
                      {"playerId": self.player, "points": 250, "reason": "Welcome back bonus", "staffId": self.staff,
                       "rewardId": "json-welcome-" + RUN},
                      self.token(self.staff, ["loyalty:award"]), headers=["x-correlation-id: " + CORRELATION])
        assert a.status == 200 and a.headers["content-type"] == "application/json", a
        assert a.headers.get("x-correlation-id") == CORRELATION, a
        assert a.json["accrual"]["points"] == "250", a.json  # int64 as a string
        assert a.json["entry"]["correlationId"] == CORRELATION and a.json["entry"]["transactionType"] == "MANUAL_BONUS", a.json
        assert self.balance() == (250, 1)
        # The same reward again is a replay: one ledger row.
        again = self.reward("250", "Welcome back bonus", rewardId="json-welcome-" + RUN)
        assert again.status == 200 and again.json["accrual"]["replay"] is True, again
        assert self.balance() == (250, 1)

    def no_token_is_401(self):
        a = self.post(LOYALTY + "ManualReward", {"playerId": self.player})
        assert a.status == 401 and a.json["code"] == "unauthenticated", a
        assert a.headers.get("x-correlation-id"), "every answer carries a correlation id"

    def a_missing_permission_is_403(self):
        a = self.post(LOYALTY + "ManualReward", {"playerId": self.player, "points": 5, "reason": "Not mine to give",
                                                 "staffId": "nobody-" + RUN}, self.token("nobody-" + RUN, ["loyalty:view"]))
        assert a.status == 403 and a.json["code"] == "permission_denied" and "loyalty:award" in a.json["message"], a

    def bad_bodies_are_400_and_write_nothing(self):
        before = self.balance()
        token = self.token(self.staff, ["loyalty:award"])
        for body in ['{"playerId": "%s", "points": ' % self.player, '[1, 2]', '{"points": "many"}',
                     '{"points": 1.5}', '{"playerId": 7}']:
            a = self.post(LOYALTY + "ManualReward", body, token)
            assert a.status == 400 and a.json["code"] == "invalid_argument", (body, a)
        assert self.balance() == before, "a refused body wrote something"

    def an_unknown_field_is_400(self):
        before = self.balance()
        a = self.reward(5, "A reward with a typo", colour="red")
        assert a.status == 400 and a.json["code"] == "invalid_argument" and '"colour"' in a.json["message"], a
        assert self.balance() == before

    def the_services_own_refusals_map_too(self):
        a = self.reward(10, "short")
        assert a.status == 400 and a.json["code"] == "invalid_argument" and "reason" in a.json["message"], a
        a = self.reward(-5000, "Takes more than there is")
        assert a.status == 400 and a.json["code"] == "failed_precondition", a

    def the_rate_limit_says_when_to_retry(self):
        staff = "json-busy-" + RUN
        for i in range(10):
            a = self.reward(1, "Quick reward number %d" % i, staff=staff, rewardId="json-busy-%s-%d" % (RUN, i))
            assert a.status == 200, a
        a = self.reward(1, "One reward too many", staff=staff)
        assert a.status == 429 and a.json["code"] == "resource_exhausted", a
        hint = int(a.headers.get("retry-after-ms", "-1"))
        assert 0 < hint <= 3000 and ("retry in %d ms" % hint) in a.json["message"], (hint, a)
        time.sleep(hint / 1000.0)
        assert self.reward(1, "One reward too many", staff=staff).status == 200

    def streams_and_other_content_types_are_refused(self):
        a = self.post(LOYALTY + "ExportLedger", {}, self.token("auditor-" + RUN, ["loyalty:admin", "loyalty:view_all"]))
        assert a.status == 501 and a.json["code"] == "unimplemented" and "unary" in a.json["message"], a
        a = self.post(LOYALTY + "GetPlayerLoyalty", "playerId=x", content_type="text/plain")
        assert a.status == 415, a
        a = self.post("/croupier.loyalty.v1.LoyaltyService/NoSuchMethod", {}, self.token(self.player, []))
        assert a.status == 501 and a.json["code"] == "unimplemented", a

    def json_calls_are_counted_in_the_metrics(self):
        # The same counters as gRPC calls: every status the checks above produced, and the auth refusals.
        raw = subprocess.run(["curl", "-sS", self.version, self.url + "/metrics"], capture_output=True, check=True).stdout
        text = raw.decode()
        method = LOYALTY + "ManualReward"
        for status in ["OK", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "UNAUTHENTICATED", "PERMISSION_DENIED"]:
            line = 'croupier_gateway_requests_total{method="%s",status="%s"}' % (method, status)
            assert line in text, "no %s count for JSON calls" % status
        assert 'croupier_gateway_auth_failures_total{reason="missing_token"}' in text, text[-2000:]

    def plain_curl_works_and_grpc_needs_http2(self):
        # `curl -d` with no options at all (HTTP/1.1) makes a JSON call.
        raw = subprocess.run(["curl", "-sS", "-i", "-H", "content-type: application/json", "-H",
                              "authorization: Bearer " + self.token(self.player, []), "-d", '{"playerId": "%s"}' % self.player,
                              self.url + LOYALTY + "GetPlayerLoyalty"], capture_output=True, check=True).stdout
        a = Answer(raw)
        assert a.status == 200 and int(a.json["balance"]) >= 250, a
        # gRPC itself over HTTP/1.1 is told what to use instead.
        raw = subprocess.run(["curl", "-sS", "-i", "--http1.1", "-H", "content-type: application/grpc", "--data-binary", "x",
                              self.url + LOYALTY + "GetPlayerLoyalty"], capture_output=True, check=True).stdout
        a = Answer(raw)
        assert a.status == 505 and "gRPC-Web or JSON" in a.text, a


if __name__ == "__main__":
    http1 = "--http1.1" in sys.argv
    if http1:
        sys.argv.remove("--http1.1")
    testkit.run_checks("json over HTTP/1.1" if http1 else "json", lambda target, secret: Checks(target, secret, http1), [
        "a_reward_and_its_balance_in_json", "no_token_is_401", "a_missing_permission_is_403",
        "bad_bodies_are_400_and_write_nothing", "an_unknown_field_is_400", "the_services_own_refusals_map_too",
        "the_rate_limit_says_when_to_retry", "streams_and_other_content_types_are_refused",
        "json_calls_are_counted_in_the_metrics", "plain_curl_works_and_grpc_needs_http2",
    ])
