// ragtide's page: ask (answers stream in over Server-Sent Events), upload, list and delete documents.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("key");
keyInput.value = sessionStorage.getItem("ragtide-key") || "";
keyInput.addEventListener("change", () => { sessionStorage.setItem("ragtide-key", keyInput.value); refreshDocuments(); });

function headers(extra = {}) {
  const key = keyInput.value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(response) {
  try { return (await response.json()).error.message; } catch { return `${response.status} ${response.statusText}`; }
}

function showError(element, message) {
  element.textContent = message;
  element.classList.add("error");
}

// The answer's text with each citation [n] (or [n, m]) linked to its source in the list.
function renderAnswer(text, count) {
  const answer = $("answer");
  answer.classList.remove("error");
  answer.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(/\[(\d+(?:,\s*\d+)*)\]/g)) {
    answer.append(text.slice(last, match.index), "[");
    match[1].split(",").map((n) => n.trim()).forEach((n, i) => {
      if (i) answer.append(", ");
      if (+n >= 1 && +n <= count) {
        const link = document.createElement("a");
        link.href = `#source-${n}`;
        link.className = "citation";
        link.textContent = n;
        answer.append(link);
      } else {
        answer.append(n);
      }
    });
    answer.append("]");
    last = match.index + match[0].length;
  }
  answer.append(text.slice(last));
}

function renderSources(sources) {
  $("sources").replaceChildren(...sources.map((s, i) => {
    const item = document.createElement("li");
    item.id = `source-${i + 1}`;
    const where = document.createElement("div");
    where.className = "where";
    where.textContent = `[${i + 1}] ${s.source.split(/[\\/]/).pop()}${s.section ? ` › ${s.section}` : ""}${s.where ? `, ${s.where}` : ""}`;
    where.title = s.source;
    const text = document.createElement("div");
    text.className = "text";
    // The sentences the answer quotes, marked (offsets into the passage's text).
    let last = 0;
    for (const [start, end] of (s.highlights || []).slice().sort((a, b) => a[0] - b[0])) {
      if (start < last || end > s.text.length) continue;
      const mark = document.createElement("mark");
      mark.textContent = s.text.slice(start, end);
      text.append(s.text.slice(last, start), mark);
      last = end;
    }
    text.append(s.text.slice(last));
    item.append(where, text);
    return item;
  }));
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

$("ask").addEventListener("submit", async (e) => {
  e.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  let text = "";
  renderAnswer("…", 0);
  $("sources").replaceChildren();
  $("meta").textContent = "";
  const body = { question, stream: true };
  if ($("mode").value) body.mode = $("mode").value;
  try {
    const response = await fetch("/v1/query", {
      method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body),
    });
    if (!response.ok) return showError($("answer"), await failure(response));
    for await (const { event, data } of events(response)) {
      if (event === "token") { text += data.text; renderAnswer(text, 0); }
      else if (event === "sources") { renderSources(data); renderAnswer(text, data.length); }
      else if (event === "error") { showError($("answer"), data.message); }
      else if (event === "done") {
        const t = data.timings || {};
        const notes = (data.retrieval.notes || []).join(" ");
        const support = data.abstained ? " · not found in your documents" : data.support == null ? "" :
          ` · ${Math.round(data.support * 100)}% supported by its citations`;
        $("meta").textContent = `${data.mode} answer${support} · ${data.retrieval.mode} retrieval` +
          (t.total ? ` · ${(t.total * 1000).toFixed(0)} ms` : "") + (notes ? ` · ${notes}` : "") +
          (data.error ? ` · LLM: ${data.error}` : "");
        $("answer").dataset.done = "true";
      }
    }
  } catch (err) {
    showError($("answer"), String(err));
  }
});

$("upload").addEventListener("submit", (e) => {
  e.preventDefault();
  const files = $("files").files;
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f);
  const bar = $("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  const request = new XMLHttpRequest();
  request.open("POST", "/v1/documents");
  for (const [k, v] of Object.entries(headers())) request.setRequestHeader(k, v);
  request.upload.onprogress = (p) => { if (p.lengthComputable) bar.value = (100 * p.loaded) / p.total; };
  request.onload = () => {
    bar.hidden = true;
    let reply = {};
    try { reply = JSON.parse(request.responseText); } catch {}
    if (request.status !== 202) return showError($("job"), reply.error ? reply.error.message : `upload failed (${request.status})`);
    $("files").value = "";
    watchJob(reply.job.id);
  };
  request.onerror = () => { bar.hidden = true; showError($("job"), "upload failed: the service did not answer"); };
  request.send(form);
});

async function watchJob(id) {
  const line = $("job");
  line.classList.remove("error");
  for (;;) {
    const response = await fetch(`/v1/jobs/${id}`, { headers: headers() });
    if (!response.ok) return showError(line, await failure(response));
    const job = await response.json();
    const failures = Object.entries(job.failures).map(([f, why]) => `${f}: ${why}`).join("; ");
    line.textContent = `ingest ${job.status}: ${job.files_done}/${job.files_total} files, ${job.chunks} chunks` +
      (failures ? ` · failed: ${failures}` : "") + (job.error ? ` · ${job.error}` : "");
    line.dataset.status = job.status;
    if (!["queued", "running"].includes(job.status)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  refreshDocuments();
}

async function refreshDocuments() {
  const list = $("documents");
  const response = await fetch("/v1/documents", { headers: headers() });
  if (!response.ok) { list.replaceChildren(); return; }
  const { documents } = await response.json();
  list.replaceChildren(...documents.map((d) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = d.name;
    name.title = d.source;
    const remove = document.createElement("button");
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete ${d.name}`);
    remove.addEventListener("click", async () => {
      const reply = await fetch(`/v1/documents/${d.id}`, { method: "DELETE", headers: headers() });
      if (!reply.ok) showError($("job"), await failure(reply));
      refreshDocuments();
    });
    item.append(name, remove);
    return item;
  }));
}

refreshDocuments();
