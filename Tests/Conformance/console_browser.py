#!/usr/bin/env python3
"""The operator console in a real browser: headless Chromium driven by
Selenium against the gateway of a running platform (loyalty, then staging:
import to 100%, deploy with progress, an override changing the diff live). Each check acts as a
user would (paste a token, fill a form, click) and asserts on the page's
text, then saves a screenshot.

  console_browser.py HOST:PORT --jwt-secret SECRET --screenshots DIR --up-pid PID --staging-db LOCATION

PID is croupier up's (its staging processes are SIGKILLed); LOCATION is
staging's database, a SQLite file or a PostgreSQL URL, where a check makes
the diffs table refuse the test game's rows (a real storage failure).
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import grpc
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

testkit.compile_stubs("console_staging_protos", [("croupier/staging/v1/staging.proto", "staging")])
from console_staging_protos import staging_pb2 as spb, staging_pb2_grpc as srpc  # noqa: E402

RUN = uuid.uuid4().hex[:8]
LOYALTY = "/croupier.loyalty.v1.LoyaltyService/"


class Checks:
    def __init__(self, target, secret, screenshots):
        self.url = "http://%s/console/" % target
        self.base = "http://" + target
        self.secret = secret
        self.screenshots = screenshots
        os.makedirs(screenshots, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.wait = WebDriverWait(self.browser, 15)
        self.staff = "console-staff-" + RUN
        self.player = "console-player-" + RUN
        self.game = "console-game-" + RUN

    def close(self):
        self.browser.quit()

    # --- helpers ---
    def token(self, sub, perms):
        return testkit.token(self.secret, {"sub": sub, "perms": perms, "exp": int(time.time()) + 600})

    def sign_in(self, token):
        self.browser.set_window_size(1280, 800)
        self.browser.get(self.url)
        box = self.wait.until(EC.presence_of_element_located((By.ID, "token-input")))
        # The page's module script attaches the buttons' handlers after the HTML is there: wait for it.
        self.wait.until(lambda b: b.execute_script("return document.body.dataset.ready === '1'"))
        errors = [m for m in self.browser_log() if "Uncaught" in m]
        assert not errors, "the console's scripts failed to load: %s" % errors
        box.clear()
        box.send_keys(token)
        self.browser.find_element(By.ID, "token-use").click()

    def text_of(self, test_id):
        return self.browser.find_element(By.CSS_SELECTOR, '[data-test="%s"]' % test_id).text

    def wait_text(self, test_id, contains, timeout=15):
        """Waits until an element marked `test_id` (any of them: a run shows one table per environment) shows `contains`."""
        selector = (By.CSS_SELECTOR, '[data-test="%s"]' % test_id)

        def shown(browser):
            try:
                return any(contains in e.text for e in browser.find_elements(*selector))
            except StaleElementReferenceException:
                return False  # re-rendered while read: look again
        try:
            WebDriverWait(self.browser, timeout).until(shown)
        except Exception:
            shown = self.browser.find_elements(*selector)
            raise AssertionError("%s never showed %r; it shows %r; console: %s" % (
                test_id, contains, shown[0].text if shown else None, self.browser_log()))

    def browser_log(self):
        try:
            return [e["message"] for e in self.browser.get_log("browser")][-5:]
        except Exception:  # noqa: BLE001
            return []

    def click(self, selector, timeout=15):
        """Clicks what `selector` finds, found again if a poll re-rendered it between finding and clicking."""
        deadline = time.time() + timeout
        while True:
            try:
                WebDriverWait(self.browser, max(0.1, deadline - time.time())).until(
                    EC.element_to_be_clickable((By.CSS_SELECTOR, selector))).click()
                return
            except StaleElementReferenceException:
                if time.time() > deadline:
                    raise

    def fill(self, element_id, value):
        e = self.browser.find_element(By.ID, element_id)
        e.clear()
        e.send_keys(value)

    def screenshot(self, name, showing=None):
        """Saves the window; with `showing` (a data-test), scrolled to that element first."""
        if showing:
            self.browser.execute_script("arguments[0].scrollIntoView()", self.browser.find_element(By.CSS_SELECTOR, '[data-test="%s"]' % showing))
        self.browser.save_screenshot(os.path.join(self.screenshots, name + ".png"))

    def balance_by_json(self):
        """The player's balance and ledger length, read past the browser (a JSON call with curl)."""
        def post(method, body):
            out = subprocess.run(["curl", "-sS", "-H", "content-type: application/json", "-H",
                                  "authorization: Bearer " + self.token(self.player, []), "-d", json.dumps(body),
                                  self.base + LOYALTY + method], capture_output=True, check=True).stdout
            return json.loads(out)
        return int(post("GetPlayerLoyalty", {"playerId": self.player}).get("balance", "0")), \
            len(post("ListLedger", {"playerId": self.player}).get("entries", []))

    # --- checks ---
    def a_staff_member_issues_a_reward_and_sees_the_new_balance(self):
        self.sign_in(self.token(self.staff, ["loyalty:award", "loyalty:view_all"]))
        self.wait_text("look-up", "Look up")
        assert "Signed in as " + self.staff in self.browser.find_element(By.ID, "who").text
        self.fill("reward-player", self.player)
        self.fill("reward-points", "250")
        self.fill("reward-reason", "Welcome back bonus")
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="issue-reward"]').click()
        self.wait_text("reward-result", "balance 0 → 250")
        self.wait_text("balance", "250")
        self.wait_text("ledger-table", "MANUAL_BONUS")
        assert "Welcome back bonus" in self.text_of("ledger-table")
        self.screenshot("reward-issued")
        assert self.balance_by_json() == (250, 1)

    def a_five_character_reason_is_refused_before_it_is_sent(self):
        self.fill("reward-player", self.player)
        self.fill("reward-points", "40")
        self.fill("reward-reason", "short")
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="issue-reward"]').click()
        self.wait_text("reward-error", "reason must be at least 10 characters (got 5)")
        self.screenshot("reward-refused")
        assert self.balance_by_json() == (250, 1), "a refused reward changed the balance"

    def errors_show_their_status_and_correlation_id(self):
        bad = self.token(self.staff, ["loyalty:award", "loyalty:view_all"])
        bad = bad[:-4] + ("AAAA" if not bad.endswith("AAAA") else "BBBB")  # the signature no longer matches
        self.sign_in(bad)
        self.fill("player-id", self.player)
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="look-up"]').click()
        self.wait_text("player-error", "UNAUTHENTICATED")
        text = self.text_of("player-error")
        assert "correlation id " in text, text
        self.screenshot("error-shown")

    def a_player_sees_only_their_own_balance(self):
        self.sign_in(self.token(self.player, []))
        self.wait_text("balance", "250")
        assert not self.browser.find_elements(By.CSS_SELECTOR, '[data-test="issue-reward"]'), "a player was offered the reward form"
        assert self.browser.find_element(By.ID, "player-id").get_attribute("readonly") is not None
        self.screenshot("player-view")

    def usable_at_desktop_and_phone_widths(self):
        self.sign_in(self.token(self.staff, ["loyalty:award", "loyalty:view_all", "loyalty:admin"]))
        self.wait_text("alerts-state", "Live")
        self.fits("loyalty", '[data-test="issue-reward"]')

    def fits(self, section, control):
        """At 1280×800 and 390×844 the page is no wider than the window (wide tables scroll inside their cards) and
        `control` is on screen to use."""
        for width, height, name in ((1280, 800, "desktop"), (390, 844, "phone")):
            self.browser.set_window_size(width, height)
            time.sleep(0.3)
            overflow = self.browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, "%s at %d px wide: the page is %d px wider than the window" % (section, width, overflow)
            button = self.browser.find_element(By.CSS_SELECTOR, control)
            self.browser.execute_script("arguments[0].scrollIntoView()", button)
            assert button.is_displayed() and 0 < button.size["width"] <= width, (section, name)
            self.screenshot("layout-%s-%s" % (section, name))
        self.browser.set_window_size(1280, 800)

    def staging_and_game_tables_fit_desktop_and_phone_widths(self):
        """Every staging card (with the game open: runs, locks, diff, queue, events) and the game tables section."""
        self.staging_sign_in_and_open()
        self.wait_text("runs-table", "SUCCEEDED")
        self.fits("staging", '[data-test="deploy"]')
        self.sign_in(self.token("console-ops-" + RUN, []))
        self.wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, '[data-section="gametables"]'))).click()
        self.fill("run-id", "console-run-" + RUN)
        self.click('[data-test="show-run"]')
        self.wait_text("run-state", "done")
        self.wait_text("operations-table", "console-run-" + RUN)
        self.fits("gametables", '[data-test="kickoff"]')

    # --- staging ---
    def staging_sign_in_and_open(self):
        self.sign_in(self.token("console-editor-" + RUN, ["staging:read", "staging:write", "staging:deploy", "staging:admin"]))
        self.wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, '[data-section="staging"]'))).click()
        self.fill("game-slug", self.game)
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="open-game"]').click()
        self.wait_text("events-state", "Live")

    def an_editor_imports_a_game_and_watches_it_reach_100_percent(self):
        self.staging_sign_in_and_open()
        path = os.path.join(self.screenshots, "..", "console-import-%s.json" % RUN)
        with open(path, "w") as f:
            json.dump([{"entityType": "card", "slug": "card-%d" % i, "fields": {"name": "Card %d" % i, "expansion": "set-%d" % (i % 4)}}
                       for i in range(3000)], f)
        self.browser.find_element(By.ID, "import-file").send_keys(os.path.abspath(path))
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="import"]').click()
        self.wait_text("import-percent", "100%")
        self.wait_text("import-state", "succeeded, 3000 of 3000 merged")
        self.wait_text("runs-table", "SUCCEEDED")
        self.wait_text("diff-counts", "3000")  # the import's diff: every card added
        self.wait_text("locks", "No lock held")
        # The games list (polled) shows the game with its latest run.
        self.wait_text("games-table", "%s run_" % self.game)
        self.wait_text("games-table", "SUCCEEDED 3000 of 3000")
        self.screenshot("staging-imported")

    def an_override_changes_the_diff_live(self):
        self.fill("override-type", "card")
        self.fill("override-slug", "card-42")
        self.fill("override-field", "name")
        self.fill("override-value", "Card 42 (errata from the console)")
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="override"]').click()
        self.wait_text("override-result", "Override saved")
        # Production now holds the deployed cards: the diff worker's event brings this one change to the page.
        self.wait_text("diff-entries", "name: Card 42 → Card 42 (errata from the console)")
        self.wait_text("events", "entity-change")
        self.screenshot("staging-override")

    def a_deploy_shows_its_progress_to_the_end(self):
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="deploy"]').click()
        self.wait_text("deploy-state", "Deployed: 3000 written")
        self.wait_text("deploy-percent", "100%")
        self.wait_text("events", "state=succeeded")
        self.screenshot("staging-deployed")

    def the_event_feed_resumes_after_staging_is_killed(self):
        """SIGKILL every staging process of the platform (the supervisor restarts them): the page's feed says it is
        reconnecting, comes back live, and continues after the last offset it showed: no event twice, none lost."""
        self.wait_text("events-state", "Live")
        before = self.feed_offsets()
        self.kill_staging()
        self.wait_text("events-state", "Reconnecting")
        self.wait_text("events-state", "Live")
        self.fill("override-value", "Card 42 (after the restart)")
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="override"]').click()
        self.wait_text("override-result", "Override saved")
        self.wait_text("events", "entity-change")
        deadline = time.time() + 15
        while time.time() < deadline and len(self.feed_offsets()) <= len(before):
            time.sleep(0.2)
        after = self.feed_offsets()
        assert len(after) == len(set(after)), "an event shown twice after the reconnect: %s" % after
        assert set(before) <= set(after) and max(after) > max(before), (before, after)
        # None lost: the feed holds every event the service has for the game (read past the browser).
        token = self.token("console-editor-" + RUN, ["staging:read"])
        stored = [int(e["offset"]) for e in self.grpc_web_json(
            "/croupier.staging.v1.StagingService/WatchEvents", [{"gameSlug": self.game, "untilCaughtUp": True}], token)]
        assert sorted(after) == sorted(stored), "the feed %s, the service %s" % (sorted(after), sorted(stored))
        self.screenshot("staging-feed-resumed")

    def kill_staging(self):
        """SIGKILLs every staging process of the platform; croupier up restarts them."""
        pids = subprocess.run(["pgrep", "-P", str(self.up_pid), "-f", "serve staging"], capture_output=True, text=True).stdout.split()
        assert pids, "no staging process under croupier up %d" % self.up_pid
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)

    def storage_fault(self, fault):
        """A storage fault on the staging database, for diff rows of this test's game: "fail" (the insert is refused),
        "stall" (the insert takes a few seconds, as on a stalled disk) or None (mended)."""
        name, where = "console_diff_fault", "NEW.game_slug = '%s'" % self.game
        if self.staging_db.startswith("postgres"):
            body = {"fail": "RAISE EXCEPTION 'injected storage failure';", "stall": "PERFORM pg_sleep(3); RETURN NEW;"}
            sql = ("CREATE FUNCTION %s() RETURNS trigger AS $$ BEGIN %s END $$ LANGUAGE plpgsql; "
                   "CREATE TRIGGER %s BEFORE INSERT ON diffs FOR EACH ROW WHEN (%s) EXECUTE FUNCTION %s()"
                   % (name, body[fault], name, where, name) if fault else "DROP TRIGGER %s ON diffs; DROP FUNCTION %s()" % (name, name))
            subprocess.run(["psql", self.staging_db, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)
            return
        db = sqlite3.connect(self.staging_db, timeout=30)
        if fault == "fail":
            db.execute("CREATE TRIGGER %s BEFORE INSERT ON diffs WHEN %s BEGIN SELECT RAISE(ABORT, 'injected storage failure'); END"
                       % (name, where))
        elif fault == "stall":  # SQLite cannot sleep: the trigger counts to 5 million (a second or two), through a view
            db.executescript("""
                CREATE VIEW %s_work AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) SELECT count(*) AS n FROM c;
                CREATE TRIGGER %s BEFORE INSERT ON diffs WHEN %s BEGIN SELECT n FROM %s_work; END;
                """ % (name, name, where, name))
        else:
            db.executescript("DROP TRIGGER %s; DROP VIEW IF EXISTS %s_work;" % (name, name))
        db.commit()
        db.close()

    def diff_events_after(self, offset):
        return [line for line in self.text_of("events").splitlines()
                if line.startswith("#") and int(line.split()[0][1:]) > offset and " diff-change " in line]

    def an_operator_redrives_a_dead_letter(self):
        """While the database refuses the game's diff rows, a requested diff fails 3 times and is dead-lettered; once the
        storage is mended, the operator redrives it from the page and the diff is produced. (The game is opened again
        from the games list first.)"""
        self.fill("game-slug", "")
        self.click('[data-test="open"][data-game="%s"]' % self.game)
        assert self.browser.find_element(By.ID, "game-slug").get_attribute("value") == self.game
        self.wait_text("events-state", "Live")
        self.storage_fault("fail")
        try:
            self.click('[data-test="generate-diff"]')
            self.wait_text("generate-result", "(request ")
            request = self.text_of("generate-result").rsplit("(request ", 1)[1].rstrip(")")
            # Receives 1, 2 and 3 fail (retried after 1 s and 2 s, then 4 s), the 4th delivery moves it to the dead letters.
            self.wait_text("dead-table", request, timeout=40)
            self.wait_text("queue-dead", "1")
            self.screenshot("staging-dead-letter", showing="queue")
        finally:
            self.storage_fault(None)
        before = max(self.feed_offsets())
        self.click('[data-test="redrive"][data-message="%s"]' % request)
        self.wait_text("dead-letters", "No dead letters.")
        deadline = time.time() + 30
        while time.time() < deadline and not self.diff_events_after(before):
            time.sleep(0.2)
        assert self.diff_events_after(before), "no diff after the redrive: %s" % self.text_of("events")
        self.wait_text("queue-dead", "0")
        self.screenshot("staging-redriven", showing="queue")

    def an_operator_pauses_and_resumes_the_diff_queue(self):
        """Pause on the queue card: the state says who paused it; a diff asked for meanwhile waits in the requests
        table and none is produced; Resume produces it."""
        self.wait_text("events-state", "Live")
        self.click('[data-test="pause-queue"]')
        try:
            self.wait_text("queue-state", "paused")
            self.wait_text("queue-paused-by", "Paused by console-editor-" + RUN)
            before = max(self.feed_offsets())
            self.click('[data-test="generate-diff"]')
            self.wait_text("generate-result", "(request ")
            request = self.text_of("generate-result").rsplit("(request ", 1)[1].rstrip(")")
            self.wait_text("requests-table", request)
            row = [line for line in self.text_of("requests-table").splitlines() if line.startswith(request)]
            assert row and "waiting" in row[0] and self.game in row[0], self.text_of("requests-table")
            time.sleep(1)  # a worker that ignored the pause has had time for the diff
            assert not self.diff_events_after(before), "a diff while paused: %s" % self.text_of("events")
            self.screenshot("staging-queue-paused", showing="queue")
            self.click('[data-test="resume-queue"]')
            self.wait_text("queue-state", "running")
        finally:  # never leave the platform's queue paused for the checks after this one
            token = self.token("console-admin-" + RUN, ["staging:admin"])
            self.grpc_web_json("/croupier.staging.v1.StagingService/SetDiffQueuePaused", [{"paused": False}], token)
        deadline = time.time() + 30
        while time.time() < deadline and not self.diff_events_after(before):
            time.sleep(0.2)
        assert self.diff_events_after(before), "no diff after the resume: %s" % self.text_of("events")

    def an_operator_releases_a_request_a_crash_left_in_flight(self):
        """Staging is SIGKILLed while its worker produces a diff: the request stays in flight for the visibility timeout
        (30 minutes). The page lists it in flight; Release makes it deliverable at once, and the diff is produced (the
        diff lock's holder is the request itself, so its redelivery takes the lock back without waiting for the lease)."""
        md = [("authorization", "Bearer " + self.token("console-editor-" + RUN, ["staging:read", "staging:write"]))]
        stub = srpc.StagingServiceStub(grpc.insecure_channel(self.base[len("http://"):]))
        after = max([e.offset for e in stub.WatchEvents(spb.WatchEventsRequest(game_slug=self.game, until_caught_up=True), metadata=md)] or [0])
        events = stub.WatchEvents(spb.WatchEventsRequest(game_slug=self.game, after_offset=after), metadata=md)
        self.storage_fault("stall")  # the diff's write takes seconds: the kill lands inside it
        try:
            asked = stub.GenerateDiff(spb.GenerateDiffRequest(game_slug=self.game), metadata=md)
            for e in events:  # kill the moment the worker holds the game's diff lock
                if e.type == "lock-change" and e.details["kind"] == "diff" and e.details["state"] == "acquired":
                    self.kill_staging()
                    break
            events.cancel()
        finally:
            self.storage_fault(None)
        deadline, live = time.time() + 30, []
        while time.time() < deadline:
            try:
                live = stub.ListDiffRequests(spb.ListDiffRequestsRequest(limit=100), metadata=md).requests
                break
            except grpc.RpcError:
                time.sleep(0.2)  # staging restarting
        assert [r.message_id for r in live if r.in_flight] == [asked.message_id], "not left in flight: %s" % live
        request = str(asked.message_id)
        release = '[data-test="release"][data-message="%s"]' % request
        self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, release)))
        self.screenshot("staging-stranded", showing="queue")
        self.click(release)
        # Handled at once: without Release, it would come back only after the 30-minute visibility timeout.
        self.wait_text("diff-requests", "No request waiting or in flight.", timeout=30)
        # Its diff exists exactly once: the killed attempt's transaction left nothing.
        diffs = [e for e in stub.WatchEvents(spb.WatchEventsRequest(game_slug=self.game, until_caught_up=True), metadata=md)
                 if e.type == "diff-change" and e.details["message_id"] == request]
        assert len(diffs) == 1, "request %s produced %d diffs" % (request, len(diffs))
        self.wait_text("events", "message_id=%s " % request)
        self.screenshot("staging-released", showing="queue")

    def feed_offsets(self):
        return [int(line.split()[0][1:]) for line in self.text_of("events").splitlines() if line.startswith("#")]

    # --- game tables ---
    def grpc_web_json(self, path, messages, token):
        """A call with JSON messages in gRPC-Web framing over HTTP/1.1 (client streams sent whole): the set-up
        the console's own page cannot do (loading an estate)."""
        import http.client
        import struct
        host, port = self.base[len("http://"):].rsplit(":", 1)
        body = b"".join(struct.pack(">BI", 0, len(m)) + m for m in (json.dumps(x).encode() for x in messages))
        c = http.client.HTTPConnection(host, int(port), timeout=20)
        c.request("POST", path, body=body, headers={"content-type": "application/grpc-web+json", "authorization": "Bearer " + token})
        data = c.getresponse().read()
        c.close()
        out, at = [], 0
        while at < len(data):
            flag, n = data[at], struct.unpack(">I", data[at + 1:at + 5])[0]
            payload = data[at + 5:at + 5 + n]
            at += 5 + n
            if flag & 0x80:
                assert b"grpc-status:0" in payload, payload
            else:
                out.append(json.loads(payload))
        return out

    def an_operator_purges_a_delete_operation_after_confirming_it(self):
        ops = self.token("console-ops-" + RUN, [])
        env, server, base = "console-env-" + RUN, "console-env-%s-s0" % RUN, 50_000_000 + int(RUN, 16) % 1_000_000 * 100
        records = [{"environment": {"environmentId": env, "requiredCurrencies": ["EUR"]}},
                   {"server": {"serverId": server, "environmentId": env, "active": True}}]
        deletes = []
        for t in range(24):
            currency = "EUR" if t % 3 == 0 else "USD"
            records.append({"table": {"tableId": "%s-t%d" % (server, t), "serverId": server, "boId": str(base + t), "currency": currency, "active": True}})
            if currency == "USD" and t % 2 == 0:
                records.append({"traffic": {"tableId": "%s-t%d" % (server, t), "period": "2026-10", "rounds": 5, "ggr": 12.5}})
            elif currency == "USD":
                deletes.append(base + t)
        self.grpc_web_json("/croupier.gametables.v1.RgsCleanup/LoadEstate", records, ops)
        self.grpc_web_json("/croupier.gametables.v1.GamesCleanup/LoadGameTables",
                           [{"id": str(base + t), "name": "t%d" % t, "currency": "X", "active": True} for t in range(24)], ops)
        self.sign_in(ops)
        self.wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, '[data-section="gametables"]'))).click()
        self.fill("run-id", "console-run-" + RUN)
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="kickoff"]').click()
        self.wait_text("run-state", "done")
        self.wait_text("run-servers", server)
        assert "null" not in self.text_of("run"), self.text_of("run")
        self.wait_text("operations-table", "DEFERRED")
        rows = self.browser.find_elements(By.CSS_SELECTOR, '[data-test="operations-table"] tbody tr')
        mine = [r for r in rows if "console-run-" + RUN in r.text]
        assert any("ARCHIVE" in r.text for r in mine), [r.text for r in rows]
        for r in mine:  # an ARCHIVE operation's tables had traffic: no purge is offered
            assert ("DELETE" in r.text) == bool(r.find_elements(By.CSS_SELECTOR, '[data-test="purge"]')), r.text
        # The run covers every environment: the operation for this test's tables is the DELETE one holding them.
        listed = self.grpc_web_json("/croupier.gametables.v1.GamesCleanup/ListOperations", [{"runId": "console-run-" + RUN, "pageSize": 50}], ops)[0]
        target = [o for o in listed["operations"] if o["action"] == "CLEANUP_ACTION_DELETE"
                  and {int(i) for i in o.get("affectedIds", [])} == set(deletes)][0]["operationId"]
        self.browser.find_element(By.CSS_SELECTOR, '[data-operation="%s"] [data-test="purge"]' % target).click()
        self.wait_text("purge-question", "Hard-delete the %d archived tables" % len(deletes))
        self.screenshot("gametables-confirm-purge")
        self.browser.find_element(By.CSS_SELECTOR, '[data-test="confirm-purge"]').click()
        self.wait_text("purge-result", "processed, %d tables deleted" % len(deletes))
        gone = self.grpc_web_json("/croupier.gametables.v1.GamesCleanup/GetGameTables", [{"ids": [str(i) for i in deletes]}], ops)[0]
        assert not gone.get("tables") and sorted(int(i) for i in gone.get("missingIds", [])) == sorted(deletes), gone
        self.screenshot("gametables-purged")


CHECKS = ["a_staff_member_issues_a_reward_and_sees_the_new_balance", "a_five_character_reason_is_refused_before_it_is_sent",
          "errors_show_their_status_and_correlation_id", "a_player_sees_only_their_own_balance", "usable_at_desktop_and_phone_widths",
          "an_editor_imports_a_game_and_watches_it_reach_100_percent", "a_deploy_shows_its_progress_to_the_end",
          "an_override_changes_the_diff_live", "the_event_feed_resumes_after_staging_is_killed", "an_operator_redrives_a_dead_letter",
          "an_operator_pauses_and_resumes_the_diff_queue", "an_operator_releases_a_request_a_crash_left_in_flight",
          "an_operator_purges_a_delete_operation_after_confirming_it", "staging_and_game_tables_fit_desktop_and_phone_widths"]


def main():
    target = sys.argv[1]
    secret = sys.argv[sys.argv.index("--jwt-secret") + 1].encode()
    screenshots = sys.argv[sys.argv.index("--screenshots") + 1]
    checks = Checks(target, secret, screenshots)
    checks.up_pid = int(sys.argv[sys.argv.index("--up-pid") + 1])
    checks.staging_db = sys.argv[sys.argv.index("--staging-db") + 1]
    failed = 0
    try:
        for name in CHECKS:
            try:
                getattr(checks, name)()
                print("PASS", name)
            except Exception as e:  # noqa: BLE001
                failed += 1
                checks.screenshot("FAILED-" + name)
                print("FAIL", name, "-", repr(e)[:2000])
            sys.stdout.flush()
    finally:
        checks.close()
    print("%d passed, %d failed (console)" % (len(CHECKS) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
