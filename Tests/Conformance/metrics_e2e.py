#!/usr/bin/env python3
"""The services' metrics through the gateway's /metrics, scraped while
staging works: six imports started at once (at most two merge at a time, so
runs queue), each ending in a diff request. A scraper reads /metrics every
100 ms, as Prometheus would (faster); the import queue must be seen to rise
and fall back to zero. The diff queue is paused by an admin meanwhile (as
an operator holds work back during an incident), so its depth is seen to
reach one request per game, whatever the machine's speed; once resumed it
falls back to zero, and the merge and diff duration histograms count every
run.

  metrics_e2e.py HOST:PORT --jwt-secret SECRET
"""
import os
import re
import sys
import threading
import time
import urllib.request
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

testkit.compile_stubs("metrics_staging_protos", [("croupier/staging/v1/staging.proto", "staging")])
from metrics_staging_protos import staging_pb2 as pb, staging_pb2_grpc as rpc  # noqa: E402

RUN = uuid.uuid4().hex[:8]
GAMES = ["metrics-%s-%d" % (RUN, i) for i in range(6)]
SAMPLE = re.compile(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$')


def scrape(url):
    """Every sample of /metrics as {(name, labels): value}, the replicas' samples of a series summed
    (each replica's series of a process's own figure carries a `replica` label, dropped here)."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            labels = ",".join(l for l in (m.group(2) or "").split(",") if l and not l.startswith("replica="))
            key = (m.group(1), labels)
            out[key] = out.get(key, 0) + float(m.group(3))
    return out


class Checks:
    def __init__(self, target, secret):
        self.url = "http://%s/metrics" % target
        self.stub = rpc.StagingServiceStub(grpc.insecure_channel(target))
        claims = {"sub": "metrics-" + RUN, "perms": ["staging:read", "staging:write"], "exp": int(time.time()) + 600}
        self.md = [("authorization", "Bearer " + testkit.token(secret, claims))]
        admin = {"sub": "metrics-admin-" + RUN, "perms": ["staging:admin"], "exp": int(time.time()) + 600}
        self.admin = [("authorization", "Bearer " + testkit.token(secret, admin))]

    def every_service_is_scraped(self):
        s = scrape(self.url)
        for service in ("loyalty", "games", "rgs", "staging"):
            up = [v for k, v in s.items() if k == ("croupier_service_scrape_up", 'service="%s"' % service)]
            assert up and up[0] >= 1, (service, sorted(k for k in s if k[0].startswith("croupier_service")))
        for name in ("croupier_staging_queue_depth", "croupier_rgs_outbox_backlog", "croupier_games_runtime_consumer_lag"):
            assert any(k[0] == name for k in s), name

    def database_figures_come_once_and_process_figures_per_replica(self):
        """A figure read from a service's database is the same in every replica: it is served once, unlabelled, so a sum
        counts each queued message once. A process's own figure comes from every replica, each labelled."""
        text = urllib.request.urlopen(self.url, timeout=10).read().decode()

        def series(name):
            return [line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]
        for name in ("croupier_staging_queue_depth", "croupier_staging_import_runs", "croupier_rgs_outbox_backlog",
                     "croupier_games_operations", "croupier_games_runtime_consumer_lag", "croupier_loyalty_alerts"):
            found = series(name)
            assert found and not any("replica=" in s for s in found), (name, found)
            assert len(found) == len(set(found)), "%s served more than once: %s" % (name, found)
        up = [s for s in series("croupier_service_scrape_up") if 'service="staging"' in s]
        for name in ("croupier_staging_diff_duration_seconds_count", "croupier_games_operation_duration_seconds_count",
                     "croupier_rgs_cleanup_plan_duration_seconds_count"):
            found = series(name)
            assert found and all("replica=" in s for s in found), (name, found)
        assert len(series("croupier_staging_diff_duration_seconds_count")) == len(up), "one series per staging replica"

    def queue_depth_rises_and_falls_during_imports(self):
        before = scrape(self.url)
        merges_before = before.get(("croupier_staging_import_merge_duration_seconds_count", ""), 0)
        diffs_before = before.get(("croupier_staging_diff_duration_seconds_count", ""), 0)
        seen = {"imports": 0}
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                s = scrape(self.url)
                imports = sum(s.get(("croupier_staging_import_runs", 'state="%s"' % st), 0) for st in ("queued", "running"))
                seen["imports"] = max(seen["imports"], imports)
                time.sleep(0.1)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # What earlier checks queued is done first: the paused queue then holds only this check's requests.
        end = time.time() + 60
        while time.time() < end and self._diff_queue_busy(scrape(self.url)):
            time.sleep(0.2)
        paused = self.stub.SetDiffQueuePaused(pb.SetDiffQueuePausedRequest(paused=True), metadata=self.admin)
        assert paused.paused and paused.paused_by == "metrics-admin-" + RUN, paused
        try:
            held = self._held_while_paused()
        finally:  # resumed even when a check failed: later checks need the queue
            self.stub.SetDiffQueuePaused(pb.SetDiffQueuePausedRequest(paused=False), metadata=self.admin)
        busy = self._drained()
        stop.set()
        watcher.join()
        after = scrape(self.url)
        print("  metrics: at most %d import runs queued or merging; %d diff requests held while paused; then %s" % (
            seen["imports"], held, "all zero" if busy == 0 else "still busy"))
        assert seen["imports"] >= 2, "the import queue was never seen above 1: %s" % seen
        assert held == len(GAMES), "the paused diff queue held %d requests, not one per game (%d)" % (held, len(GAMES))
        assert busy == 0, "the queues did not drain: %s" % busy
        assert after.get(("croupier_staging_queue_paused", 'queue="diff"')) == 0, "still paused after the resume"
        merges = after.get(("croupier_staging_import_merge_duration_seconds_count", ""), 0) - merges_before
        diffs = after.get(("croupier_staging_diff_duration_seconds_count", ""), 0) - diffs_before
        assert merges >= len(GAMES) and diffs >= len(GAMES), "merges %d, diffs %d timed over every replica" % (merges, diffs)

    def _held_while_paused(self):
        """Uploads every game, then waits until each one's diff request waits in the paused queue (the scraped
        depth); nothing may be delivered meanwhile. Returns the depth seen."""
        def upload(game):
            def parts():
                yield pb.ImportGameRequest(start=pb.ImportStart(game_slug=game, options=pb.ImportOptions(source="metrics")))
                for b in range(12):
                    yield pb.ImportGameRequest(batch=pb.EntityBatch(entities=[
                        pb.EntityInput(entity_type="card", slug="card-%d" % (b * 1000 + i), fields={"name": "c", "expansion": "set-%d" % (i % 3)})
                        for i in range(1000)]))
            self.stub.ImportGame(parts(), metadata=self.md)
        uploads = [threading.Thread(target=upload, args=(g,)) for g in GAMES]
        for t in uploads:
            t.start()
        for t in uploads:
            t.join()
        held, end = 0, time.time() + 120
        while time.time() < end:
            s = scrape(self.url)
            # The gateway serves a scrape up to 1 s old, and staging, busy merging, may miss a scrape's deadline:
            # only a scrape taken since the pause counts.
            if s.get(("croupier_staging_queue_paused", 'queue="diff"')) != 1:
                time.sleep(0.2)
                continue
            assert s.get(("croupier_staging_queue_in_flight", 'queue="diff"'), 0) == 0, "a request was delivered while paused"
            held = s.get(("croupier_staging_queue_depth", 'queue="diff"'), 0)
            if held >= len(GAMES):
                break
            time.sleep(0.2)
        assert not any(self._has_diff(g) for g in GAMES), "a diff was produced while the queue was paused"
        return held

    def _drained(self):
        """Waits until every game's diff is there and both queues are empty again; returns what is still busy."""
        busy, end = -1, time.time() + 120
        while time.time() < end:
            ready = sum(1 for g in GAMES if self._has_diff(g))
            s = scrape(self.url)
            busy = sum(s.get(("croupier_staging_import_runs", 'state="%s"' % st), 0) for st in ("receiving", "queued", "running")) \
                + self._diff_queue_busy(s)
            if ready == len(GAMES) and busy == 0:
                break
            time.sleep(0.3)
        return busy

    @staticmethod
    def _diff_queue_busy(s):
        return s.get(("croupier_staging_queue_depth", 'queue="diff"'), 0) + s.get(("croupier_staging_queue_in_flight", 'queue="diff"'), 0)

    def _has_diff(self, game):
        try:
            self.stub.GetDiff(pb.GetDiffRequest(game_slug=game, page_size=1), metadata=self.md)
            return True
        except grpc.RpcError:
            return False


if __name__ == "__main__":
    testkit.run_checks("metrics", Checks, ["every_service_is_scraped", "database_figures_come_once_and_process_figures_per_replica",
                                           "queue_depth_rises_and_falls_during_imports"])
