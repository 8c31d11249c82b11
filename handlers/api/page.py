"""The interactive API page at / (and /docs): every operation of the OpenAPI document, with
its schema and a try-it form; self-contained, no script fetched from anywhere."""

from __future__ import annotations

from typing import Any

from handlers.api.asgi import ASGIApp

__all__ = ["PAGE_PATHS", "ApiPage"]

PAGE_PATHS = frozenset({"/", "/docs"})

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Embeddings and rerank API</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; }
section.op { border: 1px solid #ccc; border-radius: 6px; margin: 1rem 0; padding: .5rem 1rem; }
.method { font-weight: bold; margin-right: .5rem; }
textarea { width: 100%; min-height: 7rem; font: 13px monospace; }
pre { background: #f6f6f6; padding: .5rem; overflow: auto; max-height: 20rem; font-size: 12px; }
</style></head>
<body>
<h1>Embeddings and rerank API</h1>
<p>Every operation of <a href="/v1/openapi.json">/v1/openapi.json</a>. Edit a request body
and send it; the reply appears below the form.
<label>API key (if the server has one): <input id="key" type="password" size="30"></label>
<button id="reload">Reload</button></p>
<div id="status">Loading the API document...</div>
<div id="ops"></div>
<script>
"use strict";
function headers() {
  const h = {"Content-Type": "application/json"};
  const key = document.getElementById("key").value;
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}
function resolve(spec, schema) {
  while (schema && schema["$ref"]) {
    schema = spec.components.schemas[schema["$ref"].split("/").pop()];
  }
  return schema || {};
}
function operation(spec, path, method, op) {
  const section = document.createElement("section");
  section.className = "op";
  section.dataset.path = path;
  const title = document.createElement("h2");
  title.innerHTML = "<span class=method></span><code></code>";
  title.querySelector(".method").textContent = method.toUpperCase();
  title.querySelector("code").textContent = path;
  section.appendChild(title);
  const summary = document.createElement("p");
  summary.textContent = op.summary || "";
  section.appendChild(summary);
  const content = op.requestBody && op.requestBody.content["application/json"];
  const body = content && content.schema;
  let input = null;
  if (body) {
    const details = document.createElement("details");
    details.innerHTML = "<summary>Request schema</summary><pre class=schema></pre>";
    details.querySelector("pre").textContent = JSON.stringify(body, null, 2);
    section.appendChild(details);
    if (content.example === undefined) {  // no served model can run it: say so, no form
      const none = document.createElement("p");
      none.className = "unavailable";
      none.textContent = op.description || "No served model can run this operation.";
      section.appendChild(none);
      return section;
    }
    input = document.createElement("textarea");
    input.className = "body";
    input.value = JSON.stringify(content.example, null, 2);
    section.appendChild(input);
  }
  const reply = op.responses["200"].content["application/json"].schema;
  const replyDetails = document.createElement("details");
  replyDetails.innerHTML = "<summary>Reply schema</summary><pre></pre>";
  replyDetails.querySelector("pre").textContent = JSON.stringify(resolve(spec, reply), null, 2);
  section.appendChild(replyDetails);
  const button = document.createElement("button");
  button.className = "send";
  button.textContent = "Send";
  section.appendChild(button);
  const out = document.createElement("pre");
  out.className = "reply";
  section.appendChild(out);
  button.addEventListener("click", async () => {
    out.textContent = "...";
    out.dataset.status = "";
    try {
      const init = {method: method.toUpperCase(), headers: headers()};
      if (input) init.body = input.value;
      const response = await fetch(path, init);
      const text = await response.text();
      out.dataset.status = String(response.status);
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) {}
      out.textContent = response.status + "\\n" + shown;
    } catch (error) {
      out.dataset.status = "failed";
      out.textContent = "request failed: " + error;
    }
  });
  return section;
}
async function load() {
  const status = document.getElementById("status");
  const ops = document.getElementById("ops");
  ops.textContent = "";
  const response = await fetch("/v1/openapi.json", {headers: headers()});
  if (!response.ok) {
    status.textContent = "The API document answered " + response.status +
      (response.status === 401 ? ": enter the API key, then Reload." : ".");
    return;
  }
  const spec = await response.json();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!op.responses["200"].content["application/json"]) continue;  // GET /: this page
      ops.appendChild(operation(spec, path, method, op));
    }
  }
  status.textContent = spec.info.title + ": " + ops.children.length + " operations.";
  status.dataset.ready = "true";
}
document.getElementById("reload").addEventListener("click", load);
load();
</script>
</body></html>
"""


class ApiPage:
    """ASGI middleware answering GET / and /docs with PAGE, in place of BentoML's page
    (which lists only its batchable APIs); everything else goes to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in PAGE_PATHS or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(PAGE)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": PAGE})
