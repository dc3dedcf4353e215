// Small DOM helpers shared by the console's views. Text always goes in as
// text nodes, never as HTML, so nothing a service returns can run here.

/** An element with attributes (on* keys become listeners) and children (strings become text). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

/** Replaces `node`'s children; null and undefined ones (a part left out) are skipped. */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

/** A labelled input (or `tag`); returns [wrapper, input]. */
export function field(label, id, { tag = "input", grow = true, ...attributes } = {}) {
  const input = el(tag, { id, name: id, ...attributes });
  return [el("div", { class: grow ? "grow" : undefined }, el("label", { for: id }, label), input), input];
}

/** What a failed call shows: the status name, its message and the correlation id to quote. */
export function describeError(error) {
  if (error && error.codeName) {
    return `${error.codeName}: ${error.message}` + (error.correlationId ? ` (correlation id ${error.correlationId})` : "");
  }
  return String(error && error.message ? error.message : error);
}

export function figure(label, value, testId) {
  return el("div", { class: "figure" }, el("div", { class: "label" }, label),
    el("div", { class: "value", "data-test": testId }, value === undefined || value === null ? "–" : String(value)));
}

/** A table of `rows` (arrays of cells: text, or an element such as a button) under `columns`. */
export function table(columns, rows, testId) {
  return el("div", { class: "table-wrap" },
    el("table", { "data-test": testId },
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((cell, i) =>
        el("td", { class: i === r.length - 1 ? "wrap" : undefined }, cell instanceof Node ? cell : cell === undefined || cell === null ? "" : String(cell))))))));
}

/** A line that shows a failed call's status (`show`) until cleared. */
export function errorLine(testId) {
  const line = el("p", { class: "error", "data-test": testId, hidden: true });
  return {
    line,
    show: (e) => { line.textContent = describeError(e); line.hidden = false; },
    clear: () => { line.hidden = true; },
  };
}

/** A bar `percent` full, with the figure above it when `testId` names it (the width is set through the DOM: the page's CSP allows no inline style). */
export function progressBar(percent, testId) {
  const clamped = Math.max(0, Math.min(100, percent));
  const fill = el("div");
  fill.style.width = `${clamped}%`;
  const bar = el("div", { class: "progress" }, fill);
  return testId ? el("div", {}, el("div", { class: "value", "data-test": testId }, `${Math.floor(clamped)}%`), bar) : bar;
}

export function time(ms) {
  const n = Number(ms || 0);
  return n > 0 ? new Date(n).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
}
