"use strict";
// Shows a whole document with the cited span [start, end) highlighted and scrolled into view.

const docId = decodeURIComponent(location.pathname.split("/").pop());
const params = new URLSearchParams(location.search);
const start = Number.parseInt(params.get("start") ?? "", 10);
const end = Number.parseInt(params.get("end") ?? "", 10);
const article = document.getElementById("doc-text");

async function show() {
  const response = await fetch(`/documents/${encodeURIComponent(docId)}`);
  if (!response.ok) {
    article.textContent = response.status === 404 ? "No such document." : `The service answered ${response.status}.`;
    return;
  }
  const doc = await response.json();
  document.title = doc.title;
  document.getElementById("doc-title").textContent = doc.title;
  const source = document.getElementById("doc-source");
  if (doc.source && /^https?:\/\//.test(doc.source)) {
    const a = document.createElement("a");
    a.href = doc.source; a.rel = "noopener noreferrer"; a.textContent = doc.source;
    source.append("Source: ", a);
  } else if (doc.source) source.textContent = `Source: ${doc.source}`;
  const valid = Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= doc.text.length;
  if (!valid) { article.textContent = doc.text; return; }
  const mark = document.createElement("mark");
  mark.id = "cited";
  mark.tabIndex = -1;
  mark.textContent = doc.text.slice(start, end);
  article.replaceChildren(doc.text.slice(0, start), mark, doc.text.slice(end));
  mark.scrollIntoView({ block: "center" });
  mark.focus({ preventScroll: true });
}

show();
