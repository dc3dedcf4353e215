#!/usr/bin/env python3
"""The services' metrics through the gateway's /metrics, scraped while
staging works: six imports started at once (at most two merge at a time, so
runs queue), each ending in a diff request. A scraper reads /metrics every
100 ms, as Prometheus would (faster); the import queue and the diff queue
must be seen to rise and then fall back to zero, and the merge and diff
duration histograms to count every run.

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
        seen = {"imports": 0, "diffs": 0}
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                s = scrape(self.url)
                imports = sum(s.get(("croupier_staging_import_runs", 'state="%s"' % st), 0) for st in ("queued", "running"))
                diffs = s.get(("croupier_staging_queue_depth", 'queue="diff"'), 0) + s.get(("croupier_staging_queue_in_flight", 'queue="diff"'), 0)
                seen["imports"] = max(seen["imports"], imports)
                seen["diffs"] = max(seen["diffs"], diffs)
                time.sleep(0.1)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

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
        # Done when every game's diff is there and both queues are empty again.
        end = time.time() + 120
        while time.time() < end:
            ready = sum(1 for g in GAMES if self._has_diff(g))
            s = scrape(self.url)
            busy = sum(s.get(("croupier_staging_import_runs", 'state="%s"' % st), 0) for st in ("receiving", "queued", "running")) \
                + s.get(("croupier_staging_queue_depth", 'queue="diff"'), 0) + s.get(("croupier_staging_queue_in_flight", 'queue="diff"'), 0)
            if ready == len(GAMES) and busy == 0:
                break
            time.sleep(0.3)
        stop.set()
        watcher.join()
        after = scrape(self.url)
        print("  metrics: at most %d import runs queued or merging, %d diff requests waiting or in flight; then %s" % (
            seen["imports"], seen["diffs"], "all zero" if busy == 0 else "still busy"))
        assert seen["imports"] >= 2, "the import queue was never seen above 1: %s" % seen
        assert seen["diffs"] >= 1, "the diff queue was never seen above 0: %s" % seen
        assert busy == 0, "the queues did not drain: %s" % busy
        merges = after.get(("croupier_staging_import_merge_duration_seconds_count", ""), 0) - merges_before
        diffs = after.get(("croupier_staging_diff_duration_seconds_count", ""), 0) - diffs_before
        assert merges >= len(GAMES) and diffs >= len(GAMES), "merges %d, diffs %d timed over every replica" % (merges, diffs)

    def _has_diff(self, game):
        try:
            self.stub.GetDiff(pb.GetDiffRequest(game_slug=game, page_size=1), metadata=self.md)
            return True
        except grpc.RpcError:
            return False


if __name__ == "__main__":
    testkit.run_checks("metrics", Checks, ["every_service_is_scraped", "database_figures_come_once_and_process_figures_per_replica",
                                           "queue_depth_rises_and_falls_during_imports"])
