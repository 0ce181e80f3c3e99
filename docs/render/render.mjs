// render.mjs: turn a modpipe GitHub job summary (Markdown) into a
// self-contained HTML page that looks roughly like GitHub's rendering,
// so that a headless browser can screenshot it.
//
//   node render.mjs [--open-details] SUMMARY.md OUT.html
//
// - Markdown is converted with marked (GitHub-flavoured: tables, raw HTML
//   such as <details>).
// - ```mermaid code blocks become <pre class="mermaid"> elements, and
//   mermaid (copied from node_modules next to OUT.html) renders them in the
//   browser on load.
// - --open-details expands every <details> element, as if a reader had
//   clicked it (GitHub shows them collapsed).
// - When rendering is over, the page sets <body data-mermaid="..."> to
//   "rendered" or "error: <message>", and <body data-height="..."> to the
//   height of the page in CSS pixels, so a caller can wait for it, check it
//   and size the screenshot (render.sh does, with chromium --dump-dom).
//
// Not part of CI; see README.md.

import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { Marked } from "marked";

const args = process.argv.slice(2);
const openDetails = args[0] === "--open-details";
if (openDetails) args.shift();
const [input, output] = args;
if (!input || !output || args.length !== 2) {
  console.error("usage: node render.mjs [--open-details] SUMMARY.md OUT.html");
  process.exit(2);
}

const escapeHTML = (s) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const markdown = readFileSync(input, "utf8");

// Line (1-based) in the Markdown file of the first line of each ```mermaid
// block, in order, so that a mermaid error ("Parse error on line N") can be
// traced back to the Markdown line that causes it.
const mermaidStarts = [];
markdown.split(/\r?\n/).forEach((line, i) => {
  if (/^ {0,3}(```+|~~~+)\s*mermaid\b/.test(line)) mermaidStarts.push(i + 2);
});
let mermaidIndex = 0;

const marked = new Marked({
  gfm: true,
  renderer: {
    code({ text, lang }) {
      if ((lang || "").trim().split(/\s+/)[0] === "mermaid") {
        // mermaid trims the diagram text, so count the leading blank lines too.
        const lead = (text.match(/^(?:[ \t]*\n)*/) || [""])[0].split("\n").length - 1;
        const start = (mermaidStarts[mermaidIndex++] || 0) + lead;
        return `<pre class="mermaid" data-md-line="${start}">${escapeHTML(text)}</pre>\n`;
      }
      return false; // default rendering for every other code block
    },
  },
});

let body = marked.parse(markdown);
if (openDetails) body = body.replace(/<details(?=[\s>])(?![^>]*\bopen\b)/g, "<details open");

// Copy mermaid's browser bundle next to the HTML so the page works from file://
// without any network access.
const require = createRequire(import.meta.url);
const mermaidJS = join(dirname(require.resolve("mermaid/package.json")), "dist", "mermaid.min.js");
copyFileSync(mermaidJS, join(dirname(resolve(output)), "mermaid.min.js"));
const mermaidVersion = JSON.parse(
  readFileSync(join(dirname(mermaidJS), "..", "package.json"), "utf8"),
).version;

const css = `
  html { background: #fff; }
  body {
    margin: 0; padding: 24px 32px; color: #1f2328; background: #fff;
    font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial,
      sans-serif, "Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji";
    font-size: 14px; line-height: 1.5;
  }
  .markdown-body { max-width: 1012px; }
  .markdown-body > *:first-child { margin-top: 0 !important; }
  h1, h2, h3, h4 { margin: 24px 0 16px; font-weight: 600; line-height: 1.25; }
  h1 { font-size: 2em; padding-bottom: .3em; border-bottom: 1px solid #d1d9e0b3; }
  h2 { font-size: 1.5em; padding-bottom: .3em; border-bottom: 1px solid #d1d9e0b3; }
  h3 { font-size: 1.25em; }
  p, table, pre, details, blockquote, ul, ol { margin: 0 0 16px; }
  table { border-spacing: 0; border-collapse: collapse; display: block; width: max-content;
    max-width: 100%; overflow: auto; font-variant: tabular-nums; }
  table th { font-weight: 600; }
  table th, table td { padding: 6px 13px; border: 1px solid #d1d9e0; }
  table tr { background: #fff; border-top: 1px solid #d1d9e0b3; }
  table tr:nth-child(2n) { background: #f6f8fa; }
  code, pre { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas,
    "Liberation Mono", "DejaVu Sans Mono", monospace; font-size: 85%; }
  code { padding: .2em .4em; background: #818b981f; border-radius: 6px; }
  pre { padding: 16px; overflow: auto; line-height: 1.45; background: #f6f8fa; border-radius: 6px; }
  pre code { padding: 0; background: transparent; font-size: 100%; }
  details summary { cursor: pointer; display: list-item; }
  details[open] > summary { margin-bottom: 8px; }
  pre.mermaid { background: #fff; border: 1px solid #d1d9e0; padding: 8px; font-size: 14px;
    font-family: inherit; text-align: center; }
  .render-error { color: #d1242f; border: 1px solid #d1242f; border-radius: 6px; padding: 8px 16px;
    white-space: pre-wrap; font-family: ui-monospace, monospace; }
`;

const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHTML(basename(input))}</title>
<style>${css}</style>
</head>
<body data-mermaid="pending">
<article class="markdown-body">
${body}
</article>
<!-- mermaid ${mermaidVersion} -->
<script src="mermaid.min.js"></script>
<script>
  (function () {
    var errors = [], summaries = [];
    var nodes = document.querySelectorAll(".mermaid");
    // Keep each diagram's source: mermaid replaces it with the SVG.
    Array.prototype.forEach.call(nodes, function (n) {
      n.dataset.source = n.textContent.replace(/^(?:[ \\t]*\\n)+/, "");
    });
    function finish(state) {
      if (document.body.dataset.mermaid !== "pending") return;
      document.body.dataset.height = String(Math.ceil(document.body.getBoundingClientRect().height));
      document.body.dataset.mermaid = state;
    }
    // Called by mermaid for every diagram that fails to parse or render.
    mermaid.parseError = function (err, hash) {
      var msg = (err && (err.str || err.message)) || String(err);
      if (errors.indexOf(msg) >= 0) return; // mermaid reports the same error twice
      // mermaid renders diagrams one after the other: the failing one is the
      // last one it has marked as processed.
      var el = Array.prototype.filter.call(nodes, function (n) {
        return n.getAttribute("data-processed");
      }).pop();
      var where = "";
      var m = /line (\\d+)/.exec(msg);
      if (el && m && el.dataset.mdLine) {
        var mdLine = Number(el.dataset.mdLine) + Number(m[1]) - 1;
        var text = (el.dataset.source || "").split("\\n")[Number(m[1]) - 1];
        where = "at Markdown line " + mdLine + (text !== undefined ? ": " + JSON.stringify(text) : "") + ": ";
      }
      errors.push(msg);
      var box = document.createElement("pre");
      box.className = "render-error";
      box.textContent = "mermaid error: " + where + msg;
      (el || document.querySelector(".markdown-body")).insertAdjacentElement("afterend", box);
      summaries.push(where + msg.replace(/\\s+/g, " "));
      finish("error: " + summaries.join(" | "));
    };
    mermaid.initialize({ startOnLoad: true, theme: "default", securityLevel: "strict",
      gantt: { useWidth: 960 } });
    if (nodes.length === 0) { finish("rendered"); return; }
    // startOnLoad renders on the load event; poll until every diagram has its SVG.
    var timer = setInterval(function () {
      var done = Array.prototype.every.call(nodes, function (n) {
        return n.getAttribute("data-processed") && n.querySelector("svg");
      });
      if (errors.length) { clearInterval(timer); return; }
      if (done) {
        clearInterval(timer);
        // An error diagram (the "bomb") is also an SVG: catch it here too.
        var bomb = document.querySelector(".mermaid svg[aria-roledescription=error]");
        finish(bomb ? "error: mermaid drew its error diagram" : "rendered");
      }
    }, 50);
  })();
</script>
</body>
</html>
`;

writeFileSync(output, html);
console.error(`render.mjs: wrote ${output} (marked + mermaid ${mermaidVersion})`);
