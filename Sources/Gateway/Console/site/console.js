// The console's shell: the token (session storage only), who it names and
// what it may do, and the sections that token can use. Each section is a
// module with { id, title, visible(claims), render(container, context) }.
import { el } from "./ui.js";
import loyalty from "./loyalty.js";
import staging from "./staging.js";
import gametables from "./gametables.js";

const SECTIONS = [loyalty, staging, gametables];
const STORAGE_KEY = "croupier.console.token";

/** The token's claims, read (not verified: the gateway verifies every call). */
export function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("a token has three dot-separated parts");
  const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(parts[1].length / 4) * 4, "=");
  let payload;
  try {
    payload = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))));
  } catch {
    throw new Error("the token's payload is not base64url JSON");
  }
  if (typeof payload.sub !== "string" || !payload.sub) throw new Error("the token names no subject (sub)");
  const perms = Array.isArray(payload.perms) ? payload.perms.filter((p) => typeof p === "string") : [];
  if (typeof payload.exp === "number" && payload.exp * 1000 <= Date.now()) throw new Error("the token has expired");
  return { sub: payload.sub, perms, exp: payload.exp, can: (perm) => perms.includes(perm) };
}

function signIn(token) {
  const claims = claimsOf(token);
  sessionStorage.setItem(STORAGE_KEY, token);
  return claims;
}

let current = null;

function show(token, claims) {
  if (current) current.abort();
  current = null;
  const who = document.getElementById("who");
  const tabs = document.getElementById("tabs");
  const views = document.getElementById("views");
  tabs.replaceChildren();
  views.replaceChildren();
  if (!claims) {
    who.textContent = "Not signed in";
    return;
  }
  const expires = claims.exp ? `, expires ${new Date(claims.exp * 1000).toLocaleString()}` : "";
  who.textContent = `Signed in as ${claims.sub}` + (claims.perms.length ? ` (${claims.perms.join(", ")})` : " (no permissions)") + expires;
  const visible = SECTIONS.filter((s) => s.visible(claims));
  const select = (section) => {
    if (current) current.abort();  // the section left behind stops its streams
    current = new AbortController();
    for (const b of tabs.children) b.setAttribute("aria-selected", String(b.dataset.section === section.id));
    const container = el("section", { id: `view-${section.id}` });
    views.replaceChildren(container);
    section.render(container, { token, claims, signal: current.signal });
  };
  for (const section of visible) {
    tabs.append(el("button", { type: "button", "data-section": section.id, onclick: () => select(section) }, section.title));
  }
  if (visible.length) select(visible[0]);
  else views.append(el("p", { class: "muted" }, "This token's permissions open no section of the console."));
}

function start() {
  const input = document.getElementById("token-input");
  const error = document.getElementById("token-error");
  const use = (token) => {
    error.hidden = true;
    try {
      show(token, signIn(token.trim()));
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      show(null, null);
    }
  };
  document.getElementById("token-use").addEventListener("click", () => use(input.value));
  document.getElementById("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(STORAGE_KEY);
    input.value = "";
    show(null, null);
  });
  const saved = sessionStorage.getItem(STORAGE_KEY);
  if (saved) {
    input.value = saved;
    use(saved);
  }
  document.body.dataset.ready = "1";  // the buttons work from here on (tests wait for it)
}

start();
