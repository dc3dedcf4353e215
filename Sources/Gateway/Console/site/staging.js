// Staging: one game at a time. Its live event feed (resumed after the last
// offset seen) drives the other cards: locks and the diff refresh on their
// events, a deploy's progress comes from its deploy-status events. Imports
// upload a JSON file of entities as one client stream and follow the run
// to 100%. Reading needs staging:read, importing and overrides
// staging:write, deploying staging:deploy; redriving dead letters and
// releasing a request stranded in flight need staging:admin.
import { call, unary } from "./grpcweb.js";
import { el, errorLine, field, fill, describeError, figure, progressBar, table, time } from "./ui.js";

const SERVICE = "/croupier.staging.v1.StagingService/";
const BATCH = 1000;

/** The entities of an uploaded file: a JSON array of {entityType, slug, fields}. */
export function entitiesOf(text) {
  let parsed;
  try { parsed = JSON.parse(text); } catch (e) { throw new Error(`the file is not JSON: ${e.message}`); }
  const list = Array.isArray(parsed) ? parsed : parsed.entities;
  if (!Array.isArray(list)) throw new Error("the file must hold a JSON array of entities (or {\"entities\": [...]})");
  list.forEach((e, i) => {
    if (!e || typeof e.entityType !== "string" || typeof e.slug !== "string") {
      throw new Error(`entity ${i} needs a string entityType and slug`);
    }
  });
  return list.map((e) => ({ entityType: e.entityType, slug: e.slug, fields: e.fields || {} }));
}

function importCard(game, { token }, onRun) {
  const file = el("input", { type: "file", accept: ".json,application/json", id: "import-file", "data-test": "import-file" });
  const errors = errorLine("import-error");
  const progress = el("div", { "data-test": "import-progress" });
  const state = el("p", { class: "muted", "data-test": "import-state" });
  const button = el("button", { type: "button", "data-test": "import" }, "Import");
  button.addEventListener("click", async () => {
    errors.clear();
    if (!file.files.length) return errors.show(new Error("choose a JSON file of entities first"));
    button.disabled = true;
    try {
      const entities = entitiesOf(await file.files[0].text());
      const requests = [{ start: { gameSlug: game, options: { source: file.files[0].name } } }];
      for (let i = 0; i < entities.length; i += BATCH) requests.push({ batch: { entities: entities.slice(i, i + BATCH) } });
      state.textContent = `Uploading ${entities.length} entities…`;
      const answer = await unary(SERVICE + "ImportGame", requests, { token });
      const runId = answer.importRunId;
      state.textContent = `Import run ${runId}`;
      onRun();
      for (;;) {
        const run = await unary(SERVICE + "GetImportRun", { importRunId: runId }, { token });
        const received = Number(run.entitiesReceived || 0);
        const done = run.status === "IMPORT_STATUS_SUCCEEDED" ? received : Number(run.entitiesMerged || 0);
        progress.replaceChildren(progressBar(received ? (100 * done) / received : 0, "import-percent"));
        state.textContent = `Import run ${runId}: ${(run.status || "").replace("IMPORT_STATUS_", "").toLowerCase()}, ${done} of ${received} merged`;
        if (run.status === "IMPORT_STATUS_FAILED") throw new Error(`the import failed: ${run.error}`);
        if (run.status === "IMPORT_STATUS_SUCCEEDED") break;
        await new Promise((resume) => setTimeout(resume, 300));
      }
      onRun();
    } catch (e) {
      errors.show(e);
    } finally {
      button.disabled = false;
    }
  });
  return el("div", { class: "card" }, el("h2", {}, "Import"),
    el("p", { class: "hint" }, "A JSON file: an array of {\"entityType\", \"slug\", \"fields\": {…}}."),
    file, el("div", { class: "row" }, button), errors.line, state, progress);
}

/** Every game staging holds, with its latest import run (polled: a run's progress shows here too); Open picks one. */
function gamesList({ token, signal }, open) {
  const errors = errorLine("games-error");
  const list = el("div", { "data-test": "games" });
  const load = async () => {
    try {
      const games = (await unary(SERVICE + "ListGames", { pageSize: 100 }, { token })).games || [];
      fill(list, games.length ? table(["game", "latest import", "status", "merged", "created", ""], games.map((g) => {
        const r = g.latestRun || {};
        return [g.gameSlug, r.importRunId || "none", (r.status || "").replace("IMPORT_STATUS_", ""),
          r.importRunId ? `${r.entitiesMerged || 0} of ${r.entitiesReceived || 0}` : "", time(r.createdAtMs),
          el("button", { type: "button", class: "secondary", "data-test": "open", "data-game": g.gameSlug, onclick: () => open(g.gameSlug) }, "Open")];
      }), "games-table") : el("p", { class: "muted" }, "No game yet: name one above and import it."));
      errors.clear();
    } catch (e) { errors.show(e); }
  };
  const timer = setInterval(load, 3000);
  signal.addEventListener("abort", () => clearInterval(timer));
  load();
  return el("div", {}, errors.line, list);
}

function runsCard(game, { token }) {
  const errors = errorLine("runs-error");
  const list = el("div", { "data-test": "runs" });
  const load = async () => {
    errors.clear();
    try {
      const page = await unary(SERVICE + "ListImportRuns", { gameSlug: game, pageSize: 10 }, { token });
      list.replaceChildren(table(["run", "status", "received", "merged", "removed", "created", "source"],
        (page.runs || []).map((r) => [r.importRunId, (r.status || "").replace("IMPORT_STATUS_", ""), r.entitiesReceived || "0",
          r.entitiesMerged || "0", r.entitiesRemoved || "0", time(r.createdAtMs), r.source || ""]), "runs-table"));
    } catch (e) {
      if (e.codeName !== "NOT_FOUND") errors.show(e); else list.replaceChildren(el("p", { class: "muted" }, "No import yet."));
    }
  };
  return { card: el("div", { class: "card" }, el("h2", {}, "Import runs"), errors.line, list), load };
}

function locksCard(game, { token }) {
  const errors = errorLine("locks-error");
  const list = el("div", { "data-test": "locks" });
  const load = async () => {
    errors.clear();
    try {
      const answer = await unary(SERVICE + "GetLocks", { gameSlug: game }, { token });
      const locks = answer.locks || [];
      list.replaceChildren(locks.length
        ? table(["kind", "holder", "since", "expires", "progress"], locks.map((l) => [l.kind, l.holder, time(l.sinceMs), time(l.expiresAtMs), l.progress || ""]), "locks-table")
        : el("p", { class: "muted" }, "No lock held."));
    } catch (e) {
      if (e.codeName === "NOT_FOUND") list.replaceChildren(el("p", { class: "muted" }, "Unknown game: import it first."));
      else errors.show(e);
    }
  };
  return { card: el("div", { class: "card" }, el("h2", {}, "Locks"), errors.line, list), load };
}

function diffCard(game, { token, claims }) {
  const errors = errorLine("diff-error");
  const body = el("div", { "data-test": "diff" });
  const note = el("p", { class: "ok", "data-test": "generate-result", hidden: true });
  const load = async () => {
    errors.clear();
    try {
      const diff = await unary(SERVICE + "GetDiff", { gameSlug: game, pageSize: 50 }, { token });
      const entries = (diff.entries || []).map((d) => [d.entityType, d.slug, (d.change || "").replace("CHANGE_KIND_", ""),
        (d.fields || []).map((f) => `${f.field}: ${f.oldValue ?? ""} → ${f.newValue ?? ""}`).join("; ")]);
      fill(body,
        el("p", { class: "muted", "data-test": "diff-summary" }, diff.empty ? "Staging and production agree."
          : `Generated ${time(diff.generatedAtMs)} (${(diff.trigger || "").replace("DIFF_TRIGGER_", "").toLowerCase()}) in ${diff.durationMs || 0} ms`),
        table(["type", "added", "changed", "removed"], (diff.counts || []).map((c) => [c.entityType, c.added || "0", c.changed || "0", c.removed || "0"]), "diff-counts"),
        (diff.impact || []).length ? el("div", {}, el("h3", {}, "Impact"),
          table(["expansion", "cards before", "cards after"], diff.impact.map((i) => [i.expansion, i.cardsBefore || "0", i.cardsAfter || "0"]), "diff-impact")) : null,
        table(["type", "slug", "change", "fields"], entries, "diff-entries"));
    } catch (e) {
      if (e.codeName === "NOT_FOUND") body.replaceChildren(el("p", { class: "muted" }, "No diff yet."));
      else errors.show(e);
    }
  };
  const generate = claims.can("staging:write") ? el("button", { type: "button", class: "secondary", "data-test": "generate-diff", onclick: async () => {
    errors.clear();
    try {
      const answer = await unary(SERVICE + "GenerateDiff", { gameSlug: game }, { token });
      note.textContent = `${answer.message || "Diff requested"} (request ${answer.messageId})`;
      note.hidden = false;
    } catch (e) { errors.show(e); }
  } }, "Generate diff") : null;
  return { card: el("div", { class: "card" }, el("h2", {}, "Diff: staging against production"), el("div", { class: "row" }, generate), note, errors.line, body), load };
}

function overrideCard(game, { token }) {
  const [typeField, typeInput] = field("Entity type", "override-type", { placeholder: "card" });
  const [slugField, slugInput] = field("Slug", "override-slug");
  const [nameField, nameInput] = field("Field", "override-field", { placeholder: "e.g. name" });
  const [valueField, valueInput] = field("Value", "override-value");
  const errors = errorLine("override-error");
  const result = el("p", { class: "ok", "data-test": "override-result", hidden: true });
  const button = el("button", { type: "button", "data-test": "override" }, "Save override");
  button.addEventListener("click", async () => {
    errors.clear();
    result.hidden = true;
    if (!typeInput.value.trim() || !slugInput.value.trim() || !nameInput.value.trim()) {
      return errors.show(new Error("entity type, slug and field are required"));
    }
    try {
      await unary(SERVICE + "CreateOverride", {
        gameSlug: game, entityType: typeInput.value.trim(), slug: slugInput.value.trim(), fields: { [nameInput.value.trim()]: valueInput.value },
      }, { token });
      result.textContent = `Override saved on ${typeInput.value.trim()}/${slugInput.value.trim()}; the diff follows.`;
      result.hidden = false;
    } catch (e) { errors.show(e); }
  });
  return el("div", { class: "card" }, el("h2", {}, "Override a field"), typeField, slugField, nameField, valueField,
    el("div", { class: "row" }, button), errors.line, result);
}

function deployCard(game, { token }) {
  const errors = errorLine("deploy-error");
  const progress = el("div", { "data-test": "deploy-progress" });
  const state = el("p", { class: "muted", "data-test": "deploy-state" });
  const button = el("button", { type: "button", "data-test": "deploy" }, "Deploy to production");
  button.addEventListener("click", async () => {
    errors.clear();
    button.disabled = true;
    state.textContent = "Deploying…";
    try {
      const answer = await unary(SERVICE + "Deploy", { gameSlug: game }, { token });
      state.textContent = `Deployed: ${answer.upserted || 0} written, ${answer.deleted || 0} deleted`;
    } catch (e) {
      errors.show(e);
      state.textContent = "";
    } finally {
      button.disabled = false;
    }
  });
  /** A deploy-status event (from the feed): progress while running, the outcome at the end. */
  const onEvent = (d) => {
    const total = Number(d.total || 0);
    if (d.state === "running" || d.state === "succeeded") {
      progress.replaceChildren(progressBar(d.state === "succeeded" ? 100 : total ? (100 * Number(d.done || 0)) / total : 0, "deploy-percent"));
    }
    if (d.state === "failed") errors.show(new Error(`deploy ${d.deploy_id} failed: ${d.error || ""}`));
  };
  return { card: el("div", { class: "card" }, el("h2", {}, "Deploy"), el("div", { class: "row" }, button), errors.line, state, progress), onEvent };
}

/**
 * The diff queue, polled: its figures, its live requests (an in-flight one
 * a crashed worker left can be released at once instead of waiting out the
 * visibility timeout) and its dead letters (redriven one by one or all). An
 * admin may pause it (requests wait; none reaches a worker) and resume it.
 */
function queueCard({ token, claims, signal }) {
  const errors = errorLine("queue-error");
  const figures = el("div", { class: "figures", "data-test": "queue" });
  const pausing = el("div", { class: "row" });
  const live = el("div", { "data-test": "diff-requests" });
  const dead = el("div", { "data-test": "dead-letters" });
  const admin = claims.can("staging:admin");
  const act = (label, testId, message, run) => el("button", { type: "button", class: "secondary", "data-test": testId, "data-message": message,
    onclick: async (event) => {
      event.target.disabled = true;
      try { await run(); await load(); } catch (e) { errors.show(e); event.target.disabled = false; }
    } }, label);
  const trigger = (r) => String((r && r.trigger) || "").replace("DIFF_TRIGGER_", "") + (r && r.entitySlug ? ` ${r.entityType}/${r.entitySlug}` : "");
  const load = async () => {
    try {
      const s = await unary(SERVICE + "GetQueueStats", {}, { token });
      figures.replaceChildren(figure("Depth", s.depth || "0", "queue-depth"), figure("In flight", s.inFlight || "0", "queue-in-flight"),
        figure("Oldest", `${Math.round(Number(s.oldestAgeMs || 0) / 1000)} s`, "queue-oldest"), figure("Dead letters", s.deadLetters || "0", "queue-dead"),
        figure("State", s.paused ? "paused" : "running", "queue-state"));
      fill(pausing, admin ? act(s.paused ? "Resume" : "Pause", s.paused ? "resume-queue" : "pause-queue", "",
        () => unary(SERVICE + "SetDiffQueuePaused", { paused: !s.paused }, { token })) : null,
        s.paused ? el("span", { class: "muted", "data-test": "queue-paused-by" }, `Paused by ${s.pausedBy} since ${time(s.pausedAtMs)}`) : null);
      const requests = (await unary(SERVICE + "ListDiffRequests", { limit: 50 }, { token })).requests || [];
      fill(live, el("h3", {}, "Requests"), requests.length ? table(["message", "game", "trigger", "receives", "state", ""], requests.map((r) => [
        r.messageId, r.gameSlug, trigger(r.request), r.receiveCount || "0",
        r.inFlight ? `in flight until ${time(r.visibleAtMs)}` : Number(r.visibleAtMs || 0) > Date.now() ? `retry at ${time(r.visibleAtMs)}` : "waiting",
        admin && r.inFlight ? act("Release", "release", r.messageId, () => unary(SERVICE + "ReleaseDiffRequest", { messageId: r.messageId }, { token })) : "",
      ]), "requests-table") : el("p", { class: "muted" }, "No request waiting or in flight."));
      if (!admin) return errors.clear();
      const letters = (await unary(SERVICE + "ListDeadLetters", { limit: 50 }, { token })).deadLetters || [];
      fill(dead, el("h3", {}, "Dead letters"), letters.length ? [
        table(["message", "game", "trigger", "receives", "died", ""], letters.map((l) => [
          l.messageId, l.gameSlug, trigger(l.request), l.receiveCount || "0", time(l.diedAtMs),
          act("Redrive", "redrive", l.messageId, () => unary(SERVICE + "RedriveDeadLetters", { messageIds: [l.messageId] }, { token })),
        ]), "dead-table"),
        el("div", { class: "row" }, act("Redrive all", "redrive-all", "", () => unary(SERVICE + "RedriveDeadLetters", {}, { token }))),
      ] : el("p", { class: "muted" }, "No dead letters."));
      errors.clear();
    } catch (e) { errors.show(e); }
  };
  const timer = setInterval(load, 2000);
  signal.addEventListener("abort", () => clearInterval(timer));
  load();
  return el("div", { class: "card" }, el("h2", {}, "Diff queue"), errors.line, figures, pausing, live, dead);
}

/**
 * The game's events, live: resumed after the last offset seen whenever the
 * stream breaks; `onReconnect` runs when it is back (the other cards reload:
 * their last reads may have failed while the service was away).
 */
function eventsCard(game, { token, signal }, onEvent, onReconnect) {
  const feed = el("ul", { class: "feed", "data-test": "events" });
  const state = el("p", { class: "muted", "data-test": "events-state" }, "Connecting…");
  let afterOffset = 0;
  (async () => {
    while (!signal.aborted) {
      try {
        if (state.textContent.startsWith("Reconnecting")) onReconnect();
        state.textContent = "Live";
        await call(SERVICE + "WatchEvents", { gameSlug: game, afterOffset: String(afterOffset) }, {
          token, signal, onMessage: (e) => {
            afterOffset = Math.max(afterOffset, Number(e.offset));
            const details = Object.entries(e.details || {}).map(([k, v]) => `${k}=${v}`).join(" ");
            feed.prepend(el("li", {}, `#${e.offset} ${time(e.createdAtMs)} ${e.type} ${details}`));
            while (feed.children.length > 200) feed.lastChild.remove();
            onEvent(e);
          },
        });
      } catch (e) {
        if (signal.aborted) return;
        state.textContent = `Reconnecting after: ${describeError(e)}`;
      }
      await new Promise((resume) => setTimeout(resume, 2000));
    }
  })();
  return el("div", { class: "card" }, el("h2", {}, "Events"), state, feed);
}

function renderGame(container, game, context) {
  const { claims } = context;
  const runs = runsCard(game, context);
  const locks = locksCard(game, context);
  const diff = diffCard(game, context);
  const deploy = claims.can("staging:deploy") ? deployCard(game, context) : null;
  const cards = [];
  if (claims.can("staging:write")) cards.push(importCard(game, context, runs.load));
  cards.push(runs.card, locks.card, diff.card);
  if (claims.can("staging:write")) cards.push(overrideCard(game, context));
  if (deploy) cards.push(deploy.card);
  cards.push(eventsCard(game, context, (e) => {
    if (e.type === "lock-change") locks.load();
    if (e.type === "diff-change") diff.load();
    if (e.type === "deploy-status" && deploy) deploy.onEvent(e.details || {});
    if (e.type === "lock-change" && (e.details || {}).state === "released") runs.load();
  }, () => { runs.load(); locks.load(); diff.load(); }));
  container.replaceChildren(el("div", { class: "grid" }, cards));
  runs.load();
  locks.load();
  diff.load();
}

export default {
  id: "staging",
  title: "Staging",
  visible: (claims) => claims.can("staging:read"),
  render(container, context) {
    const [gameField, gameInput] = field("Game", "game-slug", { placeholder: "game slug", value: sessionStorage.getItem("croupier.console.game") || "" });
    const gameView = el("div", { "data-test": "game-view" });
    let gameAbort = null;
    const open = (picked) => {
      if (typeof picked === "string") gameInput.value = picked;
      const game = gameInput.value.trim();
      if (!game) return;
      sessionStorage.setItem("croupier.console.game", game);
      if (gameAbort) gameAbort.abort();
      gameAbort = new AbortController();
      context.signal.addEventListener("abort", () => gameAbort.abort());
      renderGame(gameView, game, { ...context, signal: gameAbort.signal });
    };
    container.append(
      el("div", { class: "card" }, el("h2", {}, "Games"),
        el("div", { class: "row" }, gameField, el("button", { type: "button", "data-test": "open-game", onclick: open }, "Open")),
        gamesList(context, open)),
      el("div", { class: "grid" }, queueCard(context)),
      gameView);
    if (gameInput.value) open();
  },
};
