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
  article.replaceChildren(...rendered(doc.text, valid ? start : -1, valid ? end : -1));
  const mark = document.getElementById("cited");
  if (!mark) return;
  mark.scrollIntoView({ block: "center" });
  mark.focus({ preventScroll: true });
}

// The document's Markdown structure, drawn without changing its text: each line is a block (a
// heading, a list item, a paragraph), the "#" and "- " marks are kept but hidden, and the cited
// span [from, to) is highlighted by the same offsets the service gave (one mark per line it covers).
function rendered(text, from, to) {
  const blocks = [];
  let offset = 0, marked = false;
  for (const line of text.split("\n")) {
    const lineStart = offset;
    offset += line.length + 1;
    const heading = /^(#{1,6})[ \t]+/.exec(line);
    const item = /^[ \t]*([-*+]|\d+[.)])[ \t]+/.exec(line);
    const block = document.createElement(heading ? `h${Math.min(heading[1].length + 1, 6)}` : item ? "li" : line.trim() ? "p" : "div");
    block.className = heading ? "doc-heading" : item ? "doc-item" : line.trim() ? "doc-line" : "doc-gap";
    const markup = heading ? heading[0].length : item ? item[0].length : 0;
    if (markup) {
      const hidden = document.createElement("span");
      hidden.className = "md-mark";
      hidden.textContent = line.slice(0, markup);
      block.append(hidden);
    }
    marked = appendWithMark(block, line, lineStart, markup, from, to, !marked) || marked;
    if (offset <= text.length) {  // the line break, kept in the text like the marks, unseen
      const newline = document.createElement("span");
      newline.className = "md-mark";
      newline.textContent = "\n";
      block.append(newline);
    }
    blocks.push(block);
  }
  return blocks;
}

function appendWithMark(block, line, lineStart, begin, from, to, first) {
  // Appends the line's text after its hidden marks, the part inside [from, to) in a <mark>; the
  // first such mark of the document is #cited. Returns whether a mark was added.
  const a = Math.max(begin, from - lineStart), b = Math.min(line.length, to - lineStart);
  if (from < 0 || a >= b) { block.append(line.slice(begin)); return false; }
  const mark = document.createElement("mark");
  if (first) { mark.id = "cited"; mark.tabIndex = -1; }
  mark.textContent = line.slice(a, b);
  block.append(line.slice(begin, a), mark, line.slice(b));
  return true;
}

show();
