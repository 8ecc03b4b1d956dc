"""The labelling page: one HTML document with its style and script inline (no CDN, no file
outside the project is fetched)."""

from __future__ import annotations

_PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>deepal: label</title>
<style>
  :root { --ink:#1d2330; --muted:#667085; --line:#d0d5dd; --accent:#2f6fde; --ok:#12805c;
          --bad:#c0362c; --paper:#ffffff; --back:#f4f6fa; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
         color:var(--ink); background:var(--back); }
  header { display:flex; gap:16px; align-items:center; padding:10px 20px; background:var(--paper);
           border-bottom:1px solid var(--line); flex-wrap:wrap; }
  header h1 { font-size:17px; margin:0; }
  header label { color:var(--muted); }
  header input { font:inherit; padding:3px 6px; width:11em; }
  #progress-wrap { flex:1; min-width:180px; display:flex; align-items:center; gap:8px; }
  #bar { flex:1; height:10px; background:#e4e7ec; border-radius:5px; overflow:hidden; }
  #bar-fill { height:100%; width:0; background:var(--ok); transition:width .2s; }
  main { max-width:880px; margin:18px auto; padding:0 16px; }
  #card { background:var(--paper); border:1px solid var(--line); border-radius:10px;
          padding:18px; min-height:320px; display:flex; flex-direction:column; align-items:center; }
  #item-ref { color:var(--muted); font-size:13px; margin-bottom:10px; }
  #item-view img { max-width:100%; width:320px; height:auto; image-rendering:auto;
                   border-radius:6px; background:#eee; }
  #item-view .text { max-width:760px; white-space:pre-wrap; font-size:18px; line-height:1.5; }
  #item-view table { border-collapse:collapse; font-variant-numeric:tabular-nums; }
  #item-view td { border-bottom:1px solid var(--line); padding:3px 12px; }
  #item-view td:first-child { color:var(--muted); }
  #current-label { margin-top:10px; min-height:1.4em; color:var(--ok); font-weight:600; }
  #classes { display:flex; flex-wrap:wrap; gap:8px; justify-content:center; margin:16px 0 8px; }
  button { font:inherit; border:1px solid var(--line); background:var(--paper); border-radius:8px;
           padding:8px 14px; cursor:pointer; }
  button:hover { border-color:var(--accent); }
  button:disabled { opacity:.5; cursor:wait; }
  button.class { font-weight:600; min-width:7em; }
  button.class.chosen { background:var(--ok); color:#fff; border-color:var(--ok); }
  kbd { font:12px ui-monospace, monospace; border:1px solid var(--line); border-bottom-width:2px;
        border-radius:4px; padding:0 4px; margin-left:6px; color:var(--muted); background:#f9fafb; }
  button.chosen kbd { color:#fff; background:transparent; }
  #actions { display:flex; gap:8px; justify-content:center; }
  #message { text-align:center; min-height:1.5em; margin:10px 0; }
  #message.error { color:var(--bad); font-weight:600; }
  #message.saved { color:var(--ok); }
  #strip { display:flex; flex-wrap:wrap; gap:4px; margin-top:14px; }
  #strip span { width:16px; height:16px; border-radius:3px; background:#d0d5dd; cursor:pointer; }
  #strip span.done { background:var(--ok); }
  #strip span.skipped { background:#f0b429; }
  #strip span.here { outline:2px solid var(--accent); outline-offset:1px; }
  #done { display:none; text-align:center; padding:40px; }
  footer { color:var(--muted); font-size:13px; text-align:center; margin:18px 0; }
</style>
</head>
<body>
<header>
  <h1>deepal &middot; label <span id="round"></span></h1>
  <label>annotator <input id="annotator" autocomplete="off"></label>
  <div id="progress-wrap"><div id="bar"><div id="bar-fill"></div></div>
    <span id="progress">0 / 0</span></div>
</header>
<main>
  <div id="card">
    <div id="item-ref"></div>
    <div id="item-view"></div>
    <div id="current-label"></div>
    <div id="done"><h2>Batch done</h2><p>Every item of this batch is labeled. Run
      <code>deepal query -n 50</code> for the next batch.</p></div>
  </div>
  <div id="classes"></div>
  <div id="actions">
    <button id="prev" title="previous item">&larr; back<kbd>&larr;</kbd></button>
    <button id="skip" title="skip this item for now">skip<kbd>s</kbd></button>
    <button id="undo" title="undo your last label">undo<kbd>u</kbd></button>
  </div>
  <div id="message" role="status"></div>
  <div id="strip" aria-label="the batch"></div>
</main>
<footer>Keys: a class's number labels the item; <kbd>s</kbd> or <kbd>&rarr;</kbd> skips,
  <kbd>&larr;</kbd> goes back, <kbd>u</kbd> undoes your last label. Each label is saved as you
  give it.</footer>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const keys = "1234567890";
const state = { items: [], classes: [], pos: 0, skipped: new Set(), undo: [], busy: false };
const $ = (id) => document.getElementById(id);
const annotatorBox = $("annotator");
annotatorBox.value = new URLSearchParams(location.search).get("annotator")
  || localStorage.getItem("deepal-annotator") || "annotator";
annotatorBox.addEventListener("change", () =>
  localStorage.setItem("deepal-annotator", annotatorBox.value.trim()));

async function api(path, body) {
  const options = { headers: { "X-Deepal-Token": token } };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const payload = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(payload.error || response.statusText);
  return payload;
}

function say(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = kind || "";
}

function applyProgress(progress) {
  for (const item of state.items) {
    item.label = progress.labels[String(item.id)] || null;
  }
  $("progress").textContent = `${progress.labeled} / ${progress.total} labeled`;
  $("bar-fill").style.width = progress.total ? `${100 * progress.labeled / progress.total}%` : "0";
}

function render() {
  const item = state.items[state.pos];
  const allDone = state.items.length > 0 && state.items.every((i) => i.label);
  $("done").style.display = allDone ? "block" : "none";
  const view = $("item-view");
  view.innerHTML = "";
  $("item-ref").textContent = item
    ? `item ${item.id} \u00b7 ${item.ref} \u00b7 ${state.pos + 1} of ${state.items.length}` : "";
  if (!item) {
    view.textContent = "No batch yet: run `deepal query -n 50` first.";
  } else if (item.image) {
    const img = document.createElement("img");
    img.alt = item.ref;
    // Small images are enlarged: keep their pixels sharp instead of blurring them.
    img.addEventListener("load", () => {
      if (img.naturalWidth < 128) img.style.imageRendering = "pixelated";
    });
    img.src = `/api/items/${item.id}/image?token=${encodeURIComponent(token)}`;
    view.appendChild(img);
  } else if (item.text !== null) {
    const div = document.createElement("div");
    div.className = "text";
    div.textContent = item.text;
    view.appendChild(div);
  } else if (item.features) {
    const table = document.createElement("table");
    for (const [name, value] of item.features) {
      const row = table.insertRow();
      row.insertCell().textContent = name;
      row.insertCell().textContent = Number(value).toPrecision(4);
    }
    view.appendChild(table);
  }
  $("current-label").textContent = item && item.label ? `labeled: ${item.label}` : "";
  for (const button of document.querySelectorAll("button.class")) {
    button.classList.toggle("chosen", !!item && item.label === button.dataset.label);
    button.disabled = state.busy || !item;
  }
  const strip = $("strip");
  strip.innerHTML = "";
  state.items.forEach((other, i) => {
    const dot = document.createElement("span");
    dot.title = `${other.ref}${other.label ? ": " + other.label : ""}`;
    if (other.label) dot.classList.add("done");
    else if (state.skipped.has(other.id)) dot.classList.add("skipped");
    if (i === state.pos) dot.classList.add("here");
    dot.addEventListener("click", () => { state.pos = i; render(); });
    strip.appendChild(dot);
  });
}

function nextOpen(from) {
  // The next unlabeled item after `from` that was not skipped; then skipped ones.
  const n = state.items.length;
  for (const allowSkipped of [false, true]) {
    for (let step = 1; step <= n; step++) {
      const i = (from + step) % n;
      const item = state.items[i];
      if (!item.label && (allowSkipped || !state.skipped.has(item.id))) return i;
    }
  }
  return from;
}

async function give(label) {
  const item = state.items[state.pos];
  if (!item || state.busy) return;
  state.busy = true;
  render();
  try {
    const result = await api("/api/labels",
                             { item: item.id, label, annotator: annotatorBox.value });
    state.undo.push(item.id);
    state.skipped.delete(item.id);
    applyProgress(result);
    say(`saved: ${item.ref} \u2192 ${label}`, "saved");
    state.pos = nextOpen(state.pos);
  } catch (error) {
    say(`not saved: ${error.message}`, "error");
  } finally {
    state.busy = false;
    render();
  }
}

async function undo() {
  if (state.busy) return;
  const id = state.undo.pop();
  if (id === undefined) { say("nothing of yours to undo"); return; }
  state.busy = true;
  try {
    const result = await api("/api/undo", { item: id, annotator: annotatorBox.value });
    applyProgress(result);
    state.pos = state.items.findIndex((i) => i.id === id);
    say(`undone: item ${id}`, "saved");
  } catch (error) {
    say(`undo failed: ${error.message}`, "error");
  } finally {
    state.busy = false;
    render();
  }
}

function skip() {
  const item = state.items[state.pos];
  if (!item) return;
  state.skipped.add(item.id);
  state.pos = nextOpen(state.pos);
  say(`skipped ${item.ref}`);
  render();
}

function back() {
  if (!state.items.length) return;
  state.pos = (state.pos - 1 + state.items.length) % state.items.length;
  render();
}

document.addEventListener("keydown", (event) => {
  if (event.target === annotatorBox || event.ctrlKey || event.metaKey || event.altKey) return;
  const k = keys.indexOf(event.key);
  if (k >= 0 && k < state.classes.length) { give(state.classes[k]); event.preventDefault(); }
  else if (event.key === "s" || event.key === "ArrowRight") { skip(); event.preventDefault(); }
  else if (event.key === "ArrowLeft") { back(); event.preventDefault(); }
  else if (event.key === "u" || event.key === "Backspace") { undo(); event.preventDefault(); }
});
$("skip").addEventListener("click", skip);
$("undo").addEventListener("click", undo);
$("prev").addEventListener("click", back);

async function load() {
  try {
    const batch = await api("/api/batch");
    state.items = batch.items;
    state.classes = batch.classes;
    $("round").textContent = batch.round === null ? "" : `\u00b7 round ${batch.round}`;
    const box = $("classes");
    batch.classes.forEach((name, i) => {
      const button = document.createElement("button");
      button.className = "class";
      button.dataset.label = name;
      button.textContent = name;
      if (i < keys.length) {
        const kbd = document.createElement("kbd");
        kbd.textContent = keys[i];
        button.appendChild(kbd);
      }
      button.addEventListener("click", () => give(name));
      box.appendChild(button);
    });
    applyProgress(batch);
    const first = state.items.findIndex((i) => !i.label);
    state.pos = first >= 0 ? first : 0;
    render();
    document.body.dataset.ready = "1";
  } catch (error) {
    say(`cannot load the batch: ${error.message}`, "error");
  }
}
load();
</script>
</body>
</html>
"""


def render_page() -> str:
    """The labelling page (the token is read by its script from the page's own URL)."""
    return _PAGE
