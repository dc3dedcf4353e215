#!/usr/bin/env python3
"""StagingService end to end through the gateway with Python grpcio: stream
an import of 10,000 entities, watch lock-change and diff-change arrive, read
the diff, override one card, see entity-change and the patched diff.

  staging_e2e.py HOST:PORT --jwt-secret SECRET

Prints one line per check and exits 1 if any failed.
"""
import os
import queue
import sys
import threading
import time
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

testkit.compile_stubs("staging_protos", [("croupier/staging/v1/staging.proto", "staging")])
from staging_protos import staging_pb2 as pb, staging_pb2_grpc as rpc  # noqa: E402

GAME = "e2e-" + uuid.uuid4().hex[:8]


class Checks:
    def __init__(self, target, secret):
        self.channel = grpc.insecure_channel(target)
        self.stub = rpc.StagingServiceStub(self.channel)
        self.secret = secret
        self.md = self.bearer("curator", ["staging:read", "staging:write", "staging:deploy", "staging:admin"])
        self.events = queue.Queue()
        self.watch = self.stub.WatchEvents(pb.WatchEventsRequest(game_slug=GAME), metadata=self.md)
        threading.Thread(target=self._follow, daemon=True).start()

    def bearer(self, sub, perms):
        claims = {"sub": sub, "perms": perms, "exp": int(time.time()) + 600}
        return [("authorization", "Bearer " + testkit.token(self.secret, claims))]

    def _follow(self):
        try:
            for e in self.watch:
                self.events.put(e)
        except grpc.RpcError:
            pass

    def wait_event(self, predicate, what, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            try:
                e = self.events.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                break
            if predicate(e):
                return e
        raise AssertionError("no %s event within %ss" % (what, timeout))

    def import_10000_entities(self):
        def parts():
            yield pb.ImportGameRequest(start=pb.ImportStart(game_slug=GAME, options=pb.ImportOptions(source="e2e")))
            batch = []
            for i in range(10000):
                batch.append(pb.EntityInput(entity_type="card", slug="card-%d" % i,
                                            fields={"name": "Card %d" % i, "expansion": "set-%d" % (i % 4)}))
                if len(batch) == 1000:
                    yield pb.ImportGameRequest(batch=pb.EntityBatch(entities=batch))
                    batch = []
        r = self.stub.ImportGame(parts(), metadata=self.md)
        assert r.entities_received == 10000, r
        self.run_id = r.import_run_id

    def lock_change_and_diff_change_arrive(self):
        self.wait_event(lambda e: e.type == "lock-change" and e.details["state"] == "acquired", "lock acquired")
        self.wait_event(lambda e: e.type == "lock-change" and e.details["state"] == "released", "lock released")
        diff = self.wait_event(lambda e: e.type == "diff-change", "diff-change")
        assert diff.details["trigger"] == "IMPORT" and diff.details["added"] == "10000", diff
        run = self.stub.GetImportRun(pb.GetImportRunRequest(import_run_id=self.run_id), metadata=self.md)
        assert run.status == pb.IMPORT_STATUS_SUCCEEDED and run.entities_merged == 10000, run

    def read_the_diff(self):
        d = self.stub.GetDiff(pb.GetDiffRequest(game_slug=GAME, page_size=50), metadata=self.md)
        assert d.trigger == pb.DIFF_TRIGGER_IMPORT and d.import_run_id == self.run_id, d.trigger
        assert [(c.entity_type, c.added) for c in d.counts] == [("card", 10000)], d.counts
        assert len(d.entries) == 50 and d.next_page_token, len(d.entries)
        assert [(i.expansion, i.cards_before, i.cards_after) for i in d.impact] == \
            [("set-%d" % k, 0, 2500) for k in range(4)], d.impact

    def deploy_empties_the_diff(self):
        r = self.stub.Deploy(pb.DeployRequest(game_slug=GAME), metadata=self.md)
        assert r.upserted == 10000, r
        self.wait_event(lambda e: e.type == "deploy-status" and e.details["state"] == "succeeded", "deploy succeeded")
        d = self.stub.GetDiff(pb.GetDiffRequest(game_slug=GAME), metadata=self.md)
        assert d.empty, d

    def override_a_card_and_see_the_patched_diff(self):
        e = self.stub.CreateOverride(pb.CreateOverrideRequest(
            game_slug=GAME, entity_type="card", slug="card-42", fields={"name": "Card 42 (errata)"}), metadata=self.md)
        assert e.fields["name"] == "Card 42 (errata)" and e.overrides["name"] == "Card 42 (errata)", e
        change = self.wait_event(lambda ev: ev.type == "entity-change", "entity-change")
        assert change.details["slug"] == "card-42" and change.details["source"] == "manual", change
        self.wait_event(lambda ev: ev.type == "diff-change" and ev.details["entity"] == "card/card-42", "patched diff-change")
        d = self.stub.GetDiff(pb.GetDiffRequest(game_slug=GAME), metadata=self.md)
        assert d.trigger == pb.DIFF_TRIGGER_MANUAL, d.trigger
        assert [(x.slug, x.change) for x in d.entries] == [("card-42", pb.CHANGE_KIND_CHANGED)], d.entries
        f = d.entries[0].fields[0]
        assert (f.field, f.old_value, f.new_value) == ("name", "Card 42", "Card 42 (errata)"), f

    def bad_input(self):
        testkit.expect_error(lambda: self.stub.GetEntity(pb.GetEntityRequest(game_slug=GAME, entity_type="card", slug="nope"),
                                                         metadata=self.md), grpc.StatusCode.NOT_FOUND)
        testkit.expect_error(lambda: self.stub.CreateEntity(pb.CreateEntityRequest(
            game_slug=GAME, entity=pb.EntityInput(entity_type="spaceship", slug="x")), metadata=self.md),
            grpc.StatusCode.INVALID_ARGUMENT, "unknown entity type")
        testkit.expect_error(lambda: self.stub.UploadImage(pb.UploadImageRequest(
            game_slug=GAME, entity_type="card", slug="card-1", content_type="image/png", data=b"not a png"),
            metadata=self.md), grpc.StatusCode.INVALID_ARGUMENT)
        r = self.stub.GenerateDiff(pb.GenerateDiffRequest(game_slug=GAME), metadata=self.md)
        assert r.message == "Diff generation queued", r
        stats = self.stub.GetQueueStats(pb.GetQueueStatsRequest(), metadata=self.md)
        assert stats.dead_letters == 0, stats


    def permissions_and_internal_methods(self):
        # Reading, writing, deploying and queue administration each need their own permission.
        editor = self.bearer("editor", ["staging:read", "staging:write"])
        self.stub.GetDiff(pb.GetDiffRequest(game_slug=GAME), metadata=editor)
        testkit.expect_error(lambda: self.stub.Deploy(pb.DeployRequest(game_slug=GAME), metadata=editor),
                             grpc.StatusCode.PERMISSION_DENIED, "staging:deploy")
        testkit.expect_error(lambda: self.stub.RedriveDeadLetters(pb.RedriveDeadLettersRequest(), metadata=editor),
                             grpc.StatusCode.PERMISSION_DENIED, "staging:admin")
        reader = self.bearer("viewer", ["staging:read"])
        testkit.expect_error(lambda: self.stub.CreateOverride(pb.CreateOverrideRequest(
            game_slug=GAME, entity_type="card", slug="card-1", fields={"name": "x"}), metadata=reader),
            grpc.StatusCode.PERMISSION_DENIED, "staging:write")
        testkit.expect_error(lambda: self.stub.GetDiff(pb.GetDiffRequest(game_slug=GAME)), grpc.StatusCode.UNAUTHENTICATED)
        # DiffQueue.EnqueueDiff is service to service: the gateway refuses it, whatever the token holds.
        queue_stub = rpc.DiffQueueStub(self.channel)
        testkit.expect_error(lambda: queue_stub.EnqueueDiff(pb.EnqueueDiffRequest(
            game_slug=GAME, trigger=pb.DIFF_TRIGGER_IMPORT, import_run_id="made-up"), metadata=self.md),
            grpc.StatusCode.PERMISSION_DENIED, "internal")


    def image_limits_agree(self):
        # The docs promise images up to 5 MiB: the gateway's 4 MiB default does not stand in the way,
        # and one over the service's limit gets its INVALID_ARGUMENT naming that limit.
        png = b"\x89PNG\r\n\x1a\n"
        big = png + b"\x00" * (4_800_000 - len(png))
        e = self.stub.UploadImage(pb.UploadImageRequest(game_slug=GAME, entity_type="card", slug="card-7", content_type="image/png",
                                                        data=big), metadata=self.md)
        assert e.fields["image"].startswith("image:sha256:"), e.fields
        over = png + b"\x00" * (5 * 1024 * 1024 + 1 - len(png))
        testkit.expect_error(lambda: self.stub.UploadImage(pb.UploadImageRequest(
            game_slug=GAME, entity_type="card", slug="card-7", content_type="image/png", data=over), metadata=self.md),
            grpc.StatusCode.INVALID_ARGUMENT, "at most 5242880")


NAMES = [
    "import_10000_entities",
    "lock_change_and_diff_change_arrive",
    "read_the_diff",
    "deploy_empties_the_diff",
    "override_a_card_and_see_the_patched_diff",
    "bad_input",
    "permissions_and_internal_methods",
    "image_limits_agree",
]


def main():
    testkit.run_checks("staging", Checks, NAMES, after=lambda c: c.watch.cancel())


if __name__ == "__main__":
    main()
