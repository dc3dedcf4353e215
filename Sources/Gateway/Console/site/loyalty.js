// Loyalty: a player's balance, tier and ledger; manual rewards checked
// against the service's rules before they are sent; ledger search; slips
// needing recovery; live alerts. What shows depends on the token:
// everyone reads their own player, loyalty:view_all reads any and searches,
// loyalty:award issues rewards, loyalty:admin recovers slips and watches alerts.
import { call, unary } from "./grpcweb.js";
import { el, field, describeError, figure, progressBar, table, time } from "./ui.js";

const SERVICE = "/croupier.loyalty.v1.LoyaltyService/";

/** The service's manual-reward rules (LoyaltySettings' defaults). */
export const RULES = { minReasonLength: 10, maxReasonBytes: 1000, maxPoints: 10000, maxIdBytes: 128 };

const utf8Length = (s) => new TextEncoder().encode(s).length;

/** What is wrong with a manual reward before it is sent (none: it may go). */
export function rewardProblems({ playerId, points, reason }) {
  const problems = [];
  if (!playerId) problems.push("player id is required");
  else if (utf8Length(playerId) > RULES.maxIdBytes) problems.push(`player id is longer than ${RULES.maxIdBytes} bytes`);
  else if (/[\u0000-\u001f\u007f]/.test(playerId)) problems.push("player id contains control characters");
  if (!/^-?\d+$/.test(points)) problems.push("points must be a whole number");
  else if (BigInt(points) === 0n) problems.push("points must not be zero");
  else if ((BigInt(points) < 0n ? -BigInt(points) : BigInt(points)) > BigInt(RULES.maxPoints)) {
    problems.push(`points must be between -${RULES.maxPoints} and ${RULES.maxPoints}`);
  }
  const trimmed = [...reason.trim()].length;
  if (trimmed < RULES.minReasonLength) problems.push(`reason must be at least ${RULES.minReasonLength} characters (got ${trimmed})`);
  if (utf8Length(reason) > RULES.maxReasonBytes) problems.push(`reason is longer than ${RULES.maxReasonBytes} bytes`);
  return problems;
}

/** A fresh reward id: the same one is resent until the reward is answered, so a retry cannot pay twice. */
function newRewardId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const TIER_NAMES = { TIER_UNSPECIFIED: "–", BRONZE: "Bronze", SILVER: "Silver", GOLD: "Gold", PLATINUM: "Platinum" };

function ledgerRows(entries) {
  return (entries || []).map((e) => [time(e.createdAtMs), e.transactionType || "", e.points || "0", e.balanceAfter || "0",
    e.staffId || "", e.ratingSlipId || "", e.correlationId || "", e.reason || ""]);
}
const LEDGER_COLUMNS = ["time", "type", "points", "balance after", "staff", "slip", "correlation id", "reason"];

function playerCard(context, onPlayer) {
  const { token, claims } = context;
  const viewAll = claims.can("loyalty:view_all");
  const [playerField, playerInput] = field("Player id", "player-id", { value: viewAll ? "" : claims.sub, readonly: !viewAll || undefined });
  const status = el("p", { class: "error", "data-test": "player-error", hidden: true });
  const figures = el("div", { class: "figures", "data-test": "player-figures" });
  const ledger = el("div", { "data-test": "player-ledger" });
  const lookUp = async () => {
    status.hidden = true;
    const playerId = playerInput.value.trim();
    if (!playerId) return;
    onPlayer(playerId);
    try {
      const [player, page] = await Promise.all([
        unary(SERVICE + "GetPlayerLoyalty", { playerId }, { token }),
        unary(SERVICE + "ListLedger", { playerId, pageSize: 20 }, { token }),
      ]);
      const progress = Math.max(0, Math.min(100, Number(player.tierProgress || 0)));
      figures.replaceChildren(
        figure("Balance", player.balance || "0", "balance"),
        figure("Tier", TIER_NAMES[player.tier || "TIER_UNSPECIFIED"] || player.tier, "tier"),
        el("div", { class: "figure" }, el("div", { class: "label" }, `Progress to ${TIER_NAMES[player.nextTier] || "next tier"}`),
          el("div", { class: "value", "data-test": "tier-progress" }, `${progress}%`),
          progressBar(progress)),
        figure("Points to next tier", player.pointsToNextTier || "0", "points-to-next"),
        figure("Lifetime points", player.lifetimePoints || "0", "lifetime"));
      ledger.replaceChildren(el("h2", {}, "Latest ledger entries"), table(LEDGER_COLUMNS, ledgerRows(page.entries), "ledger-table"));
    } catch (e) {
      status.textContent = describeError(e);
      status.hidden = false;
    }
  };
  const card = el("div", { class: "card" }, el("h2", {}, "Player"),
    el("div", { class: "row" }, playerField, el("button", { type: "button", "data-test": "look-up", onclick: lookUp }, "Look up")),
    status, figures, ledger);
  return { card, lookUp, setPlayer: (id) => { playerInput.value = id; } };
}

function rewardCard(context, player) {
  const { token, claims } = context;
  const [playerField, playerInput] = field("Player id", "reward-player");
  const [pointsField, pointsInput] = field("Points", "reward-points", { inputmode: "numeric", placeholder: "e.g. 250 (negative to deduct)" });
  const [reasonField, reasonInput] = field("Reason", "reward-reason", { tag: "textarea", rows: 2, placeholder: `at least ${RULES.minReasonLength} characters` });
  const problemsList = el("p", { class: "error", "data-test": "reward-error", hidden: true });
  const result = el("p", { class: "ok", "data-test": "reward-result", hidden: true });
  const button = el("button", { type: "button", "data-test": "issue-reward" }, "Issue reward");
  let rewardId = newRewardId();
  for (const input of [playerInput, pointsInput, reasonInput]) input.addEventListener("input", () => { rewardId = newRewardId(); });
  button.addEventListener("click", async () => {
    result.hidden = true;
    problemsList.hidden = true;
    const request = { playerId: playerInput.value.trim(), points: pointsInput.value.trim(), reason: reasonInput.value };
    const problems = rewardProblems(request);
    if (problems.length) {
      problemsList.textContent = "Not sent: " + problems.join("; ");
      problemsList.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      const answer = await unary(SERVICE + "ManualReward", { ...request, staffId: claims.sub, rewardId }, { token });
      const a = answer.accrual || {};
      result.textContent = `${a.replay ? "Already issued" : "Issued"} ${a.points} points to ${request.playerId}: balance ${a.balanceBefore || 0} → ${a.balanceAfter || 0}`;
      result.hidden = false;
      rewardId = newRewardId();
      player.setPlayer(request.playerId);
      player.lookUp();
    } catch (e) {
      problemsList.textContent = describeError(e);  // the same reward id is resent if the user tries again
      problemsList.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  const card = el("div", { class: "card" }, el("h2", {}, "Manual reward"),
    el("p", { class: "hint" }, `Issued as ${claims.sub}. A reason of at least ${RULES.minReasonLength} characters; at most ${RULES.maxPoints} points either way.`),
    playerField, pointsField, reasonField, el("div", { class: "row" }, button), problemsList, result);
  return { card, setPlayer: (id) => { if (!playerInput.value) playerInput.value = id; } };
}

function searchCard({ token }) {
  const [corrField, corrInput] = field("Correlation id", "search-correlation");
  const [staffField, staffInput] = field("Staff id", "search-staff");
  const [slipField, slipInput] = field("Rating slip id", "search-slip");
  const status = el("p", { class: "error", "data-test": "search-error", hidden: true });
  const results = el("div", { "data-test": "search-results" });
  const search = async () => {
    status.hidden = true;
    try {
      const page = await unary(SERVICE + "SearchLedger", {
        correlationId: corrInput.value.trim(), staffId: staffInput.value.trim(), ratingSlipId: slipInput.value.trim(), pageSize: 50,
      }, { token });
      results.replaceChildren(table(LEDGER_COLUMNS, ledgerRows(page.entries), "search-table"));
    } catch (e) {
      status.textContent = describeError(e);
      status.hidden = false;
    }
  };
  return el("div", { class: "card" }, el("h2", {}, "Ledger search"), corrField, staffField, slipField,
    el("div", { class: "row" }, el("button", { type: "button", "data-test": "search", onclick: search }, "Search")), status, results);
}

function slipsCard({ token, claims }) {
  const status = el("p", { class: "error", "data-test": "slips-error", hidden: true });
  const results = el("div", { "data-test": "slips" });
  const load = async () => {
    status.hidden = true;
    try {
      const page = await unary(SERVICE + "ListRatingSlips", { needsRecoveryOnly: true, pageSize: 50 }, { token });
      const slips = page.slips || [];
      if (!slips.length) return results.replaceChildren(el("p", { class: "muted" }, "No slip needs recovery."));
      results.replaceChildren(el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ["slip", "player", "table", "ended", ""].map((c) => el("th", {}, c)))),
        el("tbody", {}, slips.map((v) => el("tr", {},
          el("td", {}, v.slip.slipId), el("td", {}, v.slip.playerId), el("td", {}, v.slip.tableId || ""), el("td", {}, time(v.slip.endedAtMs)),
          el("td", {}, claims.can("loyalty:admin") ? el("button", { type: "button", onclick: async (event) => {
            event.target.disabled = true;
            try {
              await unary(SERVICE + "RecoverSlipLoyalty", { slipId: v.slip.slipId }, { token });
              await load();
            } catch (e) {
              status.textContent = describeError(e);
              status.hidden = false;
              event.target.disabled = false;
            }
          } }, "Recover") : "")))))));
    } catch (e) {
      status.textContent = describeError(e);
      status.hidden = false;
    }
  };
  load();
  return el("div", { class: "card" }, el("h2", {}, "Slips needing recovery"),
    el("div", { class: "row" }, el("button", { type: "button", class: "secondary", onclick: load }, "Refresh")), status, results);
}

/** Live alerts: resumed after the last offset seen whenever the stream breaks. */
function alertsCard({ token, signal }) {
  const feed = el("ul", { class: "feed", "data-test": "alerts" });
  const state = el("p", { class: "muted", "data-test": "alerts-state" }, "Connecting…");
  let afterOffset = 0;
  const watch = async () => {
    while (!signal.aborted) {
      try {
        state.textContent = "Live";
        await call(SERVICE + "WatchAlerts", { afterOffset: String(afterOffset) }, {
          token, signal, onMessage: (a) => {
            afterOffset = Math.max(afterOffset, Number(a.offset));
            feed.prepend(el("li", {}, `${time(a.createdAtMs)} ${a.kind}: ${a.message}` + (a.correlationId ? ` (correlation id ${a.correlationId})` : "")));
          },
        });
      } catch (e) {
        if (signal.aborted) return;
        state.textContent = `Reconnecting after: ${describeError(e)}`;
      }
      await new Promise((resume) => setTimeout(resume, 2000));
    }
  };
  watch();
  return el("div", { class: "card" }, el("h2", {}, "Live alerts"), state, feed);
}

export default {
  id: "loyalty",
  title: "Loyalty",
  // Staff with a loyalty permission, and players (a token with no permission reads its own balance and ledger).
  visible: (claims) => claims.perms.length === 0 || claims.perms.some((p) => p.startsWith("loyalty:")),
  render(container, context) {
    const { claims } = context;
    let reward = null;
    const player = playerCard(context, (id) => reward && reward.setPlayer(id));
    const cards = [player.card];
    if (claims.can("loyalty:award")) {
      reward = rewardCard(context, player);
      cards.push(reward.card);
    }
    if (claims.can("loyalty:view_all")) cards.push(searchCard(context), slipsCard(context));
    if (claims.can("loyalty:admin")) cards.push(alertsCard(context));
    container.append(el("div", { class: "grid" }, cards));
    if (!claims.can("loyalty:view_all")) player.lookUp();
  },
};
