"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const positionKeys = "1234567890";
const state = { items: [], classes: [], keys: [], pos: 0, skipped: new Set(), undo: [],
                busy: false, round: null, next: { state: "off" }, waitingSince: null,
                polling: null, loading: false, review: false };
// Milliseconds the annotator waited for each batch after the first (read by tests).
const waited = [];
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

function classKeys(classes) {
  // Classes named by single digits are labelled by their own digit (class "0" by 0), so a
  // digit data set cannot be mislabelled by one; other classes by position: 1, 2, ..., 0.
  const digits = classes.every((name) => /^[0-9]$/.test(name));
  if (digits) return classes.slice();
  return classes.map((_, i) => (i < positionKeys.length ? positionKeys[i] : null));
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

function roundQuery() {
  return state.round === null ? "" : `?round=${state.round}`;
}

function batchDone() {
  return state.items.length > 0 && state.items.every((i) => i.label);
}

function describeNext(next) {
  // One line on the batch being made in the background.
  if (next.latest_round !== null && state.round !== null && next.latest_round > state.round) {
    return `next batch ready (round ${next.latest_round})`;
  }
  if (next.state === "starting") return "next batch: starting the trainer\u2026";
  if (next.state === "training") {
    return next.n_epoch ? `next batch: training, epoch ${next.epoch} of ${next.n_epoch}`
      : "next batch: training\u2026";
  }
  if (next.state === "picking") return "next batch: picking the items\u2026";
  if (next.state === "failed") return `next batch failed: ${next.message}`;
  return "";
}

function applyNext(next) {
  state.next = next;
  $("next-status").textContent = describeNext(next);
  $("next-status").className = next.state === "failed" ? "error" : "";
  $("next-now").hidden = next.state === "off";
  const newer = next.latest_round !== null && (state.round === null
                                               || next.latest_round > state.round);
  if (batchDone() || state.items.length === 0) {
    if (newer) { loadBatch(); return; }
    if (next.state !== "off" && state.waitingSince === null) state.waitingSince = Date.now();
    if (next.state === "idle" || next.state === "ready") requestNext();
  }
  const running = ["starting", "training", "picking"].includes(next.state);
  if ((running || state.waitingSince !== null) && state.polling === null) {
    state.polling = setInterval(pollNext, 500);
  } else if (!running && state.waitingSince === null && state.polling !== null) {
    clearInterval(state.polling);
    state.polling = null;
  }
}

async function pollNext() {
  try { applyNext(await api("/api/next")); } catch (error) { say(error.message, "error"); }
}

async function requestNext() {
  try {
    const result = await api("/api/next", {});
    applyNext(result.next);
  } catch (error) {
    say(`cannot start the next batch: ${error.message}`, "error");
  }
}

function describeStopping(stopping) {
  // The stabilising-predictions signal: do successive models still change their minds?
  if (stopping.kappa === null) return "";
  if (stopping.stop) {
    return `Stopping signal: successive models agree (kappa \u2265 ${stopping.threshold} `
      + `${stopping.window} times in a row since round ${stopping.stop_round}, `
      + `${stopping.stop_n_labeled} labels): more labels are unlikely to change the model much.`;
  }
  return `Agreement of the last two models: kappa ${stopping.kappa.toFixed(3)} `
    + `(the stopping signal needs \u2265 ${stopping.threshold} ${stopping.window} times in a row).`;
}

function describeLabel(item) {
  if (!item) return "";
  if (item.label) return state.review ? `checked: ${item.label}` : `labeled: ${item.label}`;
  if (state.review && item.given) {
    return `labeled ${item.given} by ${item.given_by}; the model suggests ${item.suggested}`;
  }
  return "";
}

function render() {
  const item = state.items[state.pos];
  const allDone = batchDone();
  $("done").style.display = allDone ? "block" : "none";
  $("done-note").textContent = state.review ? "Every label of the review batch is checked."
    : state.next.state === "off"
      ? "Run `deepal query -n 50` for the next batch, then reload this page."
      : "The next batch appears here as soon as it is ready.";
  const view = $("item-view");
  view.innerHTML = "";
  $("item-ref").textContent = item
    ? `item ${item.id} \u00b7 ${item.ref} \u00b7 ${state.pos + 1} of ${state.items.length}` : "";
  if (!item) {
    view.textContent = state.next.state === "off"
      ? "No batch yet: run `deepal query -n 50` first." : "Waiting for the first batch\u2026";
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
  $("current-label").textContent = describeLabel(item);
  for (const button of document.querySelectorAll("button.class")) {
    button.classList.toggle("chosen", !!item && item.label === button.dataset.label);
    button.classList.toggle("suggested", !!item && !item.label && state.review
                            && item.suggested === button.dataset.label);
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
    const result = await api(`/api/labels${roundQuery()}`,
                             { item: item.id, label, annotator: annotatorBox.value });
    state.undo.push(item.id);
    state.skipped.delete(item.id);
    applyProgress(result);
    say(`saved: ${item.ref} \u2192 ${label}`, "saved");
    state.pos = nextOpen(state.pos);
    applyNext(result.next);
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
    const result = await api(`/api/undo${roundQuery()}`,
                             { item: id, annotator: annotatorBox.value });
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
  const k = state.keys.indexOf(event.key);
  if (k >= 0) { give(state.classes[k]); event.preventDefault(); }
  else if (event.key === "s" || event.key === "ArrowRight") { skip(); event.preventDefault(); }
  else if (event.key === "ArrowLeft") { back(); event.preventDefault(); }
  else if (event.key === "u" || event.key === "Backspace") { undo(); event.preventDefault(); }
});
$("skip").addEventListener("click", skip);
$("undo").addEventListener("click", undo);
$("prev").addEventListener("click", back);
$("next-now").addEventListener("click", requestNext);

function buildButtons(classes) {
  const box = $("classes");
  box.innerHTML = "";
  classes.forEach((name, i) => {
    const button = document.createElement("button");
    button.className = "class";
    button.dataset.label = name;
    button.textContent = name;
    if (state.keys[i] !== null) {
      const kbd = document.createElement("kbd");
      kbd.textContent = state.keys[i];
      button.appendChild(kbd);
    }
    button.addEventListener("click", () => give(name));
    box.appendChild(button);
  });
}

async function loadBatch() {
  // The latest batch: the first one, or the next one made in the background.
  if (state.loading) return;
  state.loading = true;
  try {
    const batch = await api("/api/batch");
    if (state.round !== null && batch.round !== state.round) {
      waited.push(state.waitingSince === null ? 0 : Date.now() - state.waitingSince);
    }
    if (batch.round !== state.round) document.body.dataset.waited = waited.join(",");
    state.waitingSince = null;
    if (state.classes.length === 0) {
      state.classes = batch.classes;
      state.keys = classKeys(batch.classes);
      buildButtons(batch.classes);
    }
    const fresh = batch.round !== state.round;
    state.round = batch.round;
    state.review = batch.review;
    state.items = batch.items;
    if (fresh) { state.skipped.clear(); state.undo = []; }
    $("round").textContent = batch.review ? "\u00b7 review"
      : batch.round === null ? "" : `\u00b7 round ${batch.round}`;
    document.body.dataset.round = batch.round === null ? "" : String(batch.round);
    applyProgress(batch);
    $("stop-status").textContent = describeStopping(batch.stopping);
    const first = state.items.findIndex((i) => !i.label);
    state.pos = first >= 0 ? first : 0;
    render();
    document.body.dataset.ready = "1";
    state.loading = false;
    applyNext(batch.next);
  } catch (error) {
    say(`cannot load the batch: ${error.message}`, "error");
  } finally {
    state.loading = false;
  }
}
loadBatch();
