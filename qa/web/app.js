"use strict";
// The page only shows text the service returns; it never writes an answer of its own.
// All text goes in through textContent, so document text cannot inject markup.

const form = document.getElementById("ask-form");
const input = document.getElementById("question");
const button = document.getElementById("ask-button");
const result = document.getElementById("result");
const scope = document.getElementById("scope");
const suggestions = document.getElementById("suggestions-section");
let asked = false;  // once a question is asked, the suggestions make way for the answer

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function viewLink(docId, start, end, text) {
  const params = new URLSearchParams({ start: String(start), end: String(end) });
  return el("a", { href: `/view/${encodeURIComponent(docId)}?${params}` }, text);
}

function sourceLine(citation, span = citation) {
  // The title opens the document with `span` highlighted: the answer sentence, or the passage.
  const line = el("p", { class: "meta" });
  line.append(viewLink(citation.doc_id, span.start, span.end, citation.title));
  if (citation.page) line.append(` · page ${citation.page}`);
  if (typeof citation.relevance === "number") line.append(` · relevance ${Math.round(citation.relevance * 100)}%`);
  if (citation.source) {
    line.append(" · ");
    if (/^https?:\/\//.test(citation.source)) line.append(el("a", { href: citation.source, rel: "noopener noreferrer" }, citation.source));
    else line.append(citation.source);
  }
  return line;
}

function highlighted(passage, answer) {
  // The answer's offsets are in the same document as the passage's: slice, never search.
  const p = el("p", { class: "passage" });
  if (!answer || answer.passage_id !== passage.passage_id) { p.append(passage.text); return p; }
  const from = answer.start - passage.start, to = answer.end - passage.start;
  const mark = el("mark", {});
  const short = answer.short;
  if (short && short.start >= answer.start && short.end <= answer.end) {
    // the words that answer a fact question, in bold inside the answer sentence
    const a = short.start - passage.start, b = short.end - passage.start;
    mark.append(passage.text.slice(from, a), el("strong", {}, passage.text.slice(a, b)), passage.text.slice(b, to));
  } else {
    mark.append(passage.text.slice(from, to));
  }
  p.append(passage.text.slice(0, from), mark, passage.text.slice(to));
  return p;
}

function showAnswer(body) {
  const [best, ...others] = body.citations;
  const card = el("article", { class: "card answer", "aria-labelledby": "answer-title" },
    el("h2", { id: "answer-title" }, "Answer"),
    highlighted(best, body.answer),
    sourceLine(best, body.answer),
  );
  const confidence = body.answer.confidence;
  if (typeof confidence === "number") {
    // calibrated: of the answers given at this confidence, about this share were right
    card.append(el("p", { class: "meta confidence", title: "Of answers given with this confidence, about this share were right on questions whose answers are known." },
      `Confidence ${Math.round(confidence * 100)}%`));
  }
  card.append(copyLinkButton());
  result.replaceChildren(card);
  bringIntoView(card.querySelector("mark") || card);
  if (others.length) {
    const list = el("ol", { class: "citations", start: "2" });
    for (const c of others) {
      list.append(el("li", {}, el("p", { class: "passage" }, c.text), sourceLine(c)));
    }
    result.append(el("section", { class: "card", "aria-labelledby": "more-title" }, el("h3", { id: "more-title" }, "Other passages"), list));
  }
}

function showRefusal(body) {
  const card = el("article", { class: "card refusal", role: "status" },
    el("h2", {}, "No passage in the corpus answers this"),
    el("p", { class: "meta" }, body.reason || ""), copyLinkButton());
  result.replaceChildren(card);
  bringIntoView(card);
}

function copyLinkButton() {
  // The address holds the question (addressOf): copying it shares this answer.
  const button = el("button", { type: "button", class: "copy-link" }, "Copy link");
  button.addEventListener("click", async () => {
    const link = location.href;
    try {
      await navigator.clipboard.writeText(link);  // only in a secure context (https, localhost)
    } catch {
      const box = el("textarea", { readonly: "", class: "offscreen" });
      box.value = link;
      document.body.append(box);
      box.select();
      document.execCommand("copy");  // the fallback over plain http on a network address
      box.remove();
    }
    button.textContent = "Link copied";
    setTimeout(() => { button.textContent = "Copy link"; }, 2000);
  });
  return button;
}

function bringIntoView(node) {
  // On a phone the answer starts below the fold: scroll it up, unless it is in view already.
  const box = node.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) node.scrollIntoView({ block: "center" });
}

function problemOf(status, body) {
  // The service's 4xx in words a reader of the page can act on.
  const details = Array.isArray(body.detail) ? body.detail : [];
  if (details.some((d) => (d.loc || []).includes("question") && /at most/.test(d.msg))) {
    return "Questions can be at most 1,000 characters long: shorten it and ask again.";
  }
  if (status === 429) return "Too many questions in a short time: wait a moment and ask again.";
  if (details.length) return details.map((d) => d.msg).join("; ");
  return body.detail || `The service answered ${status}.`;
}

function showError(message) {
  result.replaceChildren(el("p", { class: "card error", role: "alert" }, message));
}

// The question and the document asked within are in the page's address (/?q=…&doc=…), so an
// answer can be shared and Back and Forward step through the questions asked.
function addressOf(question, doc) {
  const params = new URLSearchParams({ q: question });
  if (doc) params.set("doc", doc);
  return `/?${params}`;
}

async function ask(question, doc, remember = true) {
  if (remember && location.pathname + location.search !== addressOf(question, doc)) {
    history.pushState(null, "", addressOf(question, doc));
  }
  document.title = `${question} · Cited answers`;
  button.disabled = true;
  asked = true;
  suggestions.hidden = true;
  // The previous answer goes at once: it must never sit under a new question.
  result.replaceChildren(el("p", { class: "card loading" }, "Looking in the documents…"));
  result.setAttribute("aria-busy", "true");
  try {
    const request = { question, top_k: 3 };
    if (doc) request.filter = { doc_ids: [doc] };
    const response = await fetch("/ask", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) showError(problemOf(response.status, body));
    else if (body.answered) showAnswer(body);
    else showRefusal(body);
  } catch (error) {
    showError("The service could not be reached. Try again in a moment.");
  } finally {
    button.disabled = false;
    result.setAttribute("aria-busy", "false");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question) {  // never leave the previous answer on screen under an empty box
    showError("Type a question first.");
    input.focus();
    return;
  }
  ask(question, scope.value);
});

function fromAddress(onLoad = false) {
  // Show what the address asks: on load, and on Back or Forward.
  const params = new URLSearchParams(location.search);
  const question = (params.get("q") || "").trim();
  if (onLoad && asked) return;  // a question asked while the page loaded stands
  scope.value = [...scope.options].some((o) => o.value === params.get("doc")) ? params.get("doc") : "";
  if (onLoad && !question) return;  // keep what was typed while the page loaded
  input.value = question;
  document.title = question ? `${question} · Cited answers` : "Cited answers";
  if (question) ask(question, scope.value, false);
  else result.replaceChildren();
}

window.addEventListener("popstate", () => fromAddress());

async function loadDocuments() {
  try {
    const response = await fetch("/documents?limit=500");
    if (!response.ok) return;
    const { documents } = await response.json();
    for (const d of documents) scope.append(el("option", { value: d.doc_id }, d.title));
    document.getElementById("scope-row").hidden = documents.length < 2;
  } catch (error) { /* the whole corpus is asked */ }
}

async function loadSuggestions() {
  try {
    const response = await fetch("/suggestions");
    if (!response.ok) return;
    const { questions } = await response.json();
    if (!questions.length) return;
    const list = document.getElementById("suggestions");
    for (const q of questions) {
      const b = el("button", { type: "button" }, q);
      b.addEventListener("click", () => { input.value = q; ask(q, scope.value); });
      list.append(el("li", {}, b));
    }
    suggestions.hidden = asked;
  } catch (error) { /* suggestions are optional */ }
}

loadSuggestions();
loadDocuments().then(() => fromAddress(true));  // the address's document needs the list first
