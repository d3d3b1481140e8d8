// ragtide's page: a conversation over your documents (answers stream in over Server-Sent
// Events, follow-ups are sent with the turns before them), and the documents: upload with
// per-file progress through to "ingested", list, delete.
"use strict";

const $ = (id) => document.getElementById(id);
const turns = [];  // {question, answer: {text, sources, ...}} of the conversation shown
let key = sessionStorage.getItem("ragtide-key") || "";

function headers(extra = {}) {
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(response) {
  try { return (await response.json()).error.message; } catch { return `${response.status} ${response.statusText}`; }
}

// Every request goes through here: a 401 opens the key prompt and, once a key is given, retries.
async function call(url, options = {}) {
  for (;;) {
    const response = await fetch(url, { ...options, headers: headers(options.headers) });
    if (response.status !== 401) return response;
    if (!(await askForKey(await failure(response)))) return response;
  }
}

function askForKey(reason) {
  const dialog = $("key-dialog");
  $("key-reason").textContent = key ? `That key was refused (${reason}). Enter another.` : "This service asks for an API key.";
  $("key").value = "";
  $("change-key").hidden = false;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "save" && $("key").value.trim()) {
        key = $("key").value.trim();
        sessionStorage.setItem("ragtide-key", key);
        resolve(true);
      } else resolve(false);
    }, { once: true });
    dialog.showModal();
  });
}

$("change-key").addEventListener("click", async () => { if (await askForKey("")) refreshDocuments(); });

// -- the conversation ----------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fileName(path) { return path.split(/[\\/]/).pop(); }

// The answer's text with each citation [n] (or [n, m]) linked to its source in this turn.
function renderAnswer(node, text, count, turn) {
  node.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(/\[(\d+(?:,\s*\d+)*)\]/g)) {
    node.append(text.slice(last, match.index), "[");
    match[1].split(",").map((n) => n.trim()).forEach((n, i) => {
      if (i) node.append(", ");
      if (+n >= 1 && +n <= count) {
        const link = element("a", "citation", n);
        link.href = `#turn-${turn}-source-${n}`;
        link.setAttribute("aria-label", `source ${n}`);
        link.addEventListener("click", () => { const d = document.querySelector(link.hash); if (d) d.open = true; });
        node.append(link);
      } else node.append(n);
    });
    node.append("]");
    last = match.index + match[0].length;
  }
  node.append(text.slice(last));
}

// Each source a disclosure: its name, section and page; opened, the passage with the
// sentences the answer quotes marked (offsets into the passage's text).
function renderSources(node, sources, turn) {
  node.replaceChildren(...sources.map((s, i) => {
    const item = element("li");
    const details = element("details");
    details.id = `turn-${turn}-source-${i + 1}`;
    const summary = element("summary", "where");
    summary.append(element("span", "number", `[${i + 1}]`), ` ${fileName(s.source)}`);
    if (s.section) summary.append(element("span", "section", ` › ${s.section}`));
    if (s.where) summary.append(element("span", "page", `, ${s.where}`));
    summary.title = s.source;
    const text = element("div", "text");
    let last = 0;
    for (const [start, end] of (s.highlights || []).slice().sort((a, b) => a[0] - b[0])) {
      if (start < last || end > s.text.length) continue;
      text.append(s.text.slice(last, start), element("mark", "", s.text.slice(start, end)));
      last = end;
    }
    text.append(s.text.slice(last));
    details.open = (s.highlights || []).length > 0;  // the passages the answer quotes, opened
    details.append(summary, text);
    item.append(details);
    return item;
  }));
}

function describe(data) {
  const t = data.timings || {};
  const notes = (data.retrieval.notes || []).join(" ");
  const support = data.abstained ? "not found in your documents" : data.support == null ? "" :
    `${Math.round(data.support * 100)}% supported by its citations`;
  return [`${data.mode} answer`, support, `${data.retrieval.mode} retrieval`,
    t.total ? `${(t.total * 1000).toFixed(0)} ms` : "", data.searched ? `searched as: “${data.searched}”` : "",
    notes, data.error ? `LLM: ${data.error}` : ""].filter(Boolean).join(" · ");
}

// Server-Sent Events over a POST: read the stream, split events on blank lines.
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
      }
      if (data) yield { event, data: JSON.parse(data) };
    }
  }
}

let shown = 0;  // turns on screen, answered or not: their numbers name their sources' anchors

function newTurn(question) {
  const n = ++shown;
  const item = element("li", "turn");
  item.id = `turn-${n}`;
  const answer = element("div", "answer", "…");
  const meta = element("p", "meta");
  const copy = element("button", "copy", "Copy");
  copy.type = "button";
  copy.setAttribute("aria-label", `Copy answer ${n}`);
  copy.hidden = true;
  const sources = element("ol", "sources");
  sources.setAttribute("aria-label", `Sources of answer ${n}`);
  item.append(element("p", "question", question), answer, meta, copy, sources);
  $("turns").append(item);
  $("empty").hidden = true;
  return { n, item, answer, meta, copy, sources };
}

$("ask").addEventListener("submit", async (e) => {
  e.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("question").value = "";
  const view = newTurn(question);
  const history = turns.flatMap((t) => [{ role: "user", content: t.question }, { role: "assistant", content: t.answer.text }]);
  const record = { question, answer: { text: "", sources: [] } };
  const body = { question, stream: true, history };
  if ($("mode").value) body.mode = $("mode").value;
  let text = "";
  try {
    const response = await call("/v1/query", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!response.ok) {
      const message = await failure(response);
      view.answer.textContent = response.status === 503 && !documentCount ?
        "No documents yet: upload some on the right, then ask again." : message;
      view.answer.classList.add(response.status === 503 ? "notice" : "error");
      view.item.dataset.done = "true";
      return;
    }
    for await (const { event, data } of events(response)) {
      if (event === "token") { text += data.text; renderAnswer(view.answer, text, 0, view.n); }
      else if (event === "sources") { record.answer.sources = data; renderSources(view.sources, data, view.n); renderAnswer(view.answer, text, data.length, view.n); }
      else if (event === "error") { view.answer.textContent = data.message; view.answer.classList.add("error"); }
      else if (event === "done") {
        Object.assign(record.answer, data, { text, sources: record.answer.sources });
        if (data.abstained) view.answer.classList.add("notice");
        view.meta.textContent = describe(data);
        view.copy.hidden = false;
        view.copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(markdownOf(record, view.n)));
        turns.push(record);
        $("export").disabled = false;
        view.item.dataset.done = "true";
      }
    }
  } catch (err) {
    view.answer.textContent = String(err);
    view.answer.classList.add("error");
    view.item.dataset.done = "true";
  }
  $("question").focus();
});

$("question").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask").requestSubmit(); }
});

function markdownOf(turn, n) {
  const sources = turn.answer.sources.map((s, i) =>
    `[${i + 1}] ${fileName(s.source)}${s.section ? ` › ${s.section}` : ""}${s.where ? `, ${s.where}` : ""}`);
  return `### ${n}. ${turn.question}\n\n${turn.answer.text}\n` + (sources.length ? `\n${sources.join("  \n")}\n` : "");
}

$("export").addEventListener("click", () => {
  const text = "# Conversation with your documents\n\n" + turns.map((t, i) => markdownOf(t, i + 1)).join("\n");
  const link = element("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "text/markdown" }));
  link.download = "conversation.md";
  link.click();
  URL.revokeObjectURL(link.href);
});

$("new-conversation").addEventListener("click", () => {
  turns.length = 0;
  $("turns").replaceChildren();
  $("empty").hidden = false;
  $("export").disabled = true;
  $("question").focus();
});

// -- documents -------------------------------------------------------------------------

let documentCount = 0;

$("upload").addEventListener("submit", (e) => {
  e.preventDefault();
  const files = [...$("files").files];
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f);
  const rows = new Map(files.map((f) => {
    const row = element("li");
    const bar = element("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", `uploading ${f.name}`);
    const status = element("span", "status", "uploading");
    row.append(element("span", "name", f.name), bar, status);
    $("uploads").append(row);
    return [f.name, { row, bar, status }];
  }));
  const request = new XMLHttpRequest();
  request.open("POST", "/v1/documents");
  for (const [k, v] of Object.entries(headers())) request.setRequestHeader(k, v);
  request.upload.onprogress = (p) => {
    if (p.lengthComputable) for (const r of rows.values()) r.bar.value = (100 * p.loaded) / p.total;
  };
  request.onload = async () => {
    let reply = {};
    try { reply = JSON.parse(request.responseText); } catch {}
    if (request.status === 401 && (await askForKey(reply.error ? reply.error.message : "401"))) {
      for (const r of rows.values()) r.row.remove();
      return $("upload").requestSubmit();
    }
    if (request.status !== 202) {
      for (const r of rows.values()) { r.status.textContent = "failed"; r.row.classList.add("error"); }
      $("job").textContent = reply.error ? reply.error.message : `upload failed (${request.status})`;
      $("job").classList.add("error");
      return;
    }
    $("files").value = "";
    for (const r of rows.values()) { r.bar.value = 100; r.status.textContent = "queued"; }
    watchJob(reply.job.id, rows);
  };
  request.onerror = () => { $("job").textContent = "upload failed: the service did not answer"; };
  request.send(form);
});

async function watchJob(id, rows) {
  const line = $("job");
  line.classList.remove("error");
  for (;;) {
    const response = await call(`/v1/jobs/${id}`);
    if (!response.ok) { line.textContent = await failure(response); line.classList.add("error"); return; }
    const job = await response.json();
    const failed = job.failures || {};
    for (const [name, r] of rows) {
      const reason = Object.entries(failed).find(([f]) => fileName(f) === name);
      if (reason) { r.status.textContent = `failed: ${reason[1]}`; r.row.classList.add("error"); }
      else if (job.status === "done") r.status.textContent = "ingested";
      else if (job.status === "running") r.status.textContent = "ingesting";
      else if (!["queued"].includes(job.status)) r.status.textContent = job.status;
    }
    line.textContent = `ingest ${job.status}: ${job.files_done}/${job.files_total} files, ${job.chunks} chunks` +
      (job.error ? ` · ${job.error}` : "");
    line.dataset.status = job.status;
    if (!["queued", "running"].includes(job.status)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  refreshDocuments();
}

let role = "admin";

// Who the key is: its tenant and role, shown in the header; a read key gets no upload or delete.
async function showWho() {
  const response = await call("/v1/me");
  if (!response.ok) return;
  const me = await response.json();
  role = me.role;
  if (me.key !== "local") {
    $("who").textContent = `${me.tenant ? `tenant ${me.tenant}` : "all documents"} · ${me.role}`;
    $("who").hidden = false;
  }
  $("upload").hidden = role === "read";
}

async function refreshDocuments() {
  const list = $("documents");
  const response = await call("/v1/documents");
  if (!response.ok) { list.replaceChildren(); return; }
  await showWho();
  const { documents } = await response.json();
  documentCount = documents.length;
  $("no-documents").hidden = documentCount > 0;
  $("empty-hint").textContent = documentCount ?
    `${documentCount} document${documentCount > 1 ? "s" : ""} ready. Answers quote the passage that holds the fact and cite it; follow-up questions are read with the conversation.` :
    "Start by uploading documents on the right; then ask. Answers quote the passage that holds the fact and cite it.";
  list.replaceChildren(...documents.map((d) => {
    const item = element("li");
    const name = element("span", "name", d.name);
    name.title = d.source;
    const facts = [d.format, d.pages ? `${d.pages} pages` : "", `${d.chunks} chunks`,
      ...Object.entries(d.metadata || {}).filter(([k]) => !["type", "pages", "bytes", "ingested", "sections"].includes(k))
        .map(([k, v]) => `${k}: ${v}`)].filter(Boolean).join(" · ");
    const about = element("span", "meta", facts);
    const remove = element("button", "delete", "Delete");
    remove.type = "button";
    remove.setAttribute("aria-label", `Delete ${d.name}`);
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete ${d.name}? Its passages leave the collection.`)) return;
      const reply = await call(`/v1/documents/${d.id}`, { method: "DELETE" });
      if (!reply.ok) { $("job").textContent = await failure(reply); $("job").classList.add("error"); }
      refreshDocuments();
    });
    const text = element("div");
    text.append(name, about);
    item.append(text);
    if (role !== "read") item.append(remove);
    return item;
  }));
}

refreshDocuments();
