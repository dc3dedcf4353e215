// Game tables: cleanup runs (kick off, then each environment's and
// server's state with slice progress), the Games side's operations, purge
// of deferred DELETE operations after a confirmation step (an ARCHIVE
// operation's tables had traffic and are kept: no purge is offered), and
// the runtime consumer's position and lag.
import { unary } from "./grpcweb.js";
import { el, errorLine, field, fill, figure, table, time } from "./ui.js";

const RGS = "/croupier.gametables.v1.RgsCleanup/";
const GAMES = "/croupier.gametables.v1.GamesCleanup/";
const RUNTIME = "/croupier.gametables.v1.GameRuntime/";

const short = (value, prefix) => (value || "").replace(prefix, "");

function runCard({ token, signal }, onRun) {
  const [idField, idInput] = field("Cleanup run id", "run-id", { value: sessionStorage.getItem("croupier.console.run") || "" });
  const errors = errorLine("run-error");
  const view = el("div", { "data-test": "run" });
  let polling = 0;
  const show = async (kickoff) => {
    errors.clear();
    const runId = idInput.value.trim();
    if (!runId) return errors.show(new Error("a run id is required"));
    sessionStorage.setItem("croupier.console.run", runId);
    const mine = ++polling;
    try {
      let run = await unary(RGS + (kickoff ? "KickoffCleanup" : "GetCleanupRun"), { runId }, { token });
      onRun(runId);
      while (mine === polling && !signal.aborted) {
        render(run);
        if (run.state === "JOB_STATE_DONE" || run.state === "JOB_STATE_FAILED") break;
        await new Promise((resume) => setTimeout(resume, 1000));
        run = await unary(RGS + "GetCleanupRun", { runId }, { token });
      }
      onRun(runId);
    } catch (e) {
      errors.show(e);
    }
  };
  const render = (run) => {
    fill(view,
      el("p", { "data-test": "run-state" }, `Run ${run.runId}: ${short(run.state, "JOB_STATE_").toLowerCase()}, archive time ${time(run.archivedAtMs)}`),
      ...(run.environments || []).map((env) => el("div", {},
        el("h3", {}, `${env.environmentId}: ${short(env.state, "JOB_STATE_").toLowerCase()}`),
        table(["server", "state", "to delete", "to archive", "slices sent", "acknowledged", "of", "failure"],
          (env.servers || []).map((s) => [s.serverId, short(s.state, "JOB_STATE_"), s.toDelete || "0", s.toArchive || "0",
            s.slicesSent || "0", s.slicesAcknowledged || "0", s.slices || "0", s.failure || ""]), "run-servers"))),
      (run.skippedEnvironments || []).length ? el("p", { class: "muted" }, `Skipped: ${run.skippedEnvironments.join(", ")}`) : null);
  };
  return el("div", { class: "card" }, el("h2", {}, "Cleanup run"), idField,
    el("div", { class: "row" },
      el("button", { type: "button", "data-test": "kickoff", onclick: () => show(true) }, "Kick off"),
      el("button", { type: "button", class: "secondary", "data-test": "show-run", onclick: () => show(false) }, "Show")),
    errors.line, view);
}

function operationsCard({ token }) {
  const [statusField, statusSelect] = field("Status", "op-status", { tag: "select" });
  for (const s of ["", "RECEIVED", "IN_PROGRESS", "DEFERRED", "PROCESSED", "FAILED"]) {
    statusSelect.append(el("option", { value: s ? `OPERATION_STATUS_${s}` : "" }, s ? s.toLowerCase().replace("_", " ") : "any"));
  }
  const [actionField, actionSelect] = field("Action", "op-action", { tag: "select" });
  for (const a of ["", "DELETE", "ARCHIVE"]) actionSelect.append(el("option", { value: a ? `CLEANUP_ACTION_${a}` : "" }, a ? a.toLowerCase() : "any"));
  const [runField, runInput] = field("Run id", "op-run");
  const errors = errorLine("operations-error");
  const result = el("p", { class: "ok", "data-test": "purge-result", hidden: true });
  const confirm = el("div", { class: "card", "data-test": "purge-confirm", hidden: true });
  const list = el("div", { "data-test": "operations" });
  const load = async () => {
    errors.clear();
    try {
      const request = { runId: runInput.value.trim(), pageSize: 50 };
      if (statusSelect.value) request.status = statusSelect.value;
      if (actionSelect.value) request.action = actionSelect.value;
      const page = await unary(GAMES + "ListOperations", request, { token });
      const ops = page.operations || [];
      list.replaceChildren(ops.length ? el("div", { class: "table-wrap" }, el("table", { "data-test": "operations-table" },
        el("thead", {}, el("tr", {}, ["operation", "action", "status", "tables", "purged", "run", "created", ""].map((c) => el("th", {}, c)))),
        el("tbody", {}, ops.map((op) => el("tr", { "data-operation": op.operationId },
          el("td", {}, op.operationId), el("td", {}, short(op.action, "CLEANUP_ACTION_")), el("td", {}, short(op.status, "OPERATION_STATUS_")),
          el("td", {}, String((op.affectedIds || []).length)), el("td", {}, op.purged || "0"), el("td", {}, op.runId || ""), el("td", {}, time(op.createdAtMs)),
          el("td", {}, op.status === "OPERATION_STATUS_DEFERRED" && op.action === "CLEANUP_ACTION_DELETE"
            ? el("button", { type: "button", class: "secondary", "data-test": "purge", onclick: () => ask(op) }, "Purge…") : ""))))))
        : el("p", { class: "muted" }, "No operation matches."));
    } catch (e) {
      errors.show(e);
    }
  };
  /** The confirmation step: what will be deleted, for good, before anything is. */
  const ask = (op) => {
    result.hidden = true;
    const go = el("button", { type: "button", "data-test": "confirm-purge" }, "Purge for good");
    go.addEventListener("click", async () => {
      go.disabled = true;
      try {
        const done = await unary(GAMES + "PurgeArchived", { operationId: op.operationId }, { token });
        result.textContent = `Operation ${done.operationId}: ${short(done.status, "OPERATION_STATUS_").toLowerCase()}, ${done.purged || 0} tables deleted`;
        result.hidden = false;
        confirm.hidden = true;
        await load();
      } catch (e) {
        errors.show(e);
        go.disabled = false;
      }
    });
    confirm.replaceChildren(
      el("p", { "data-test": "purge-question" }, `Hard-delete the ${(op.affectedIds || []).length} archived tables of DELETE operation ${op.operationId}? This cannot be undone.`),
      el("div", { class: "row" }, go, el("button", { type: "button", class: "secondary", "data-test": "cancel-purge", onclick: () => { confirm.hidden = true; } }, "Cancel")));
    confirm.hidden = false;
  };
  return {
    card: el("div", { class: "card" }, el("h2", {}, "Games operations"),
      el("div", { class: "row" }, statusField, actionField, runField),
      el("div", { class: "row" }, el("button", { type: "button", "data-test": "list-operations", onclick: load }, "List")),
      errors.line, confirm, result, list),
    load,
    setRun: (runId) => { runInput.value = runId; },
  };
}

function consumerCard({ token, signal }) {
  const errors = errorLine("consumer-error");
  const figures = el("div", { class: "figures", "data-test": "consumer" });
  const load = async () => {
    try {
      const s = await unary(RUNTIME + "GetConsumerStatus", {}, { token });
      figures.replaceChildren(figure("Lag", s.lag || "0", "consumer-lag"), figure("Offset", s.offset || "0"), figure("Last entry", s.lastEntryId || "0"),
        figure("Evaluations", s.evaluations || "0"), figure("Skipped", s.skipped || "0"));
      errors.clear();
    } catch (e) {
      errors.show(e);
    }
  };
  const timer = setInterval(load, 2000);
  signal.addEventListener("abort", () => clearInterval(timer));
  load();
  return el("div", { class: "card" }, el("h2", {}, "Runtime consumer"), errors.line, figures);
}

export default {
  id: "gametables",
  title: "Game tables",
  visible: (claims) => claims.perms.length === 0 || !claims.perms.every((p) => p.startsWith("loyalty:") || p.startsWith("staging:")),
  render(container, context) {
    const operations = operationsCard(context);
    container.append(el("div", { class: "grid" },
      runCard(context, (runId) => { operations.setRun(runId); operations.load(); }), consumerCard(context)), operations.card);
  },
};
