"""The API page at / in a real headless Chromium (Debian's package), driven over the DevTools
protocol: every operation listed, nothing fetched from elsewhere, one embeddings request sent
through its form and checked against the model's own output, every form's example sent as
the page fills it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from handlers.core.table import OPERATIONS
from tests.conftest import EMBED_ID
from tests.oracles import embed_oracle
from tests.servers import free_port


def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing and we are root."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, env=env)
        install = ["apt-get", "install", "-y", "-qq", "chromium"]
        subprocess.run(install, check=True, capture_output=True, env=env)
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("the API page test needs Chromium: apt-get install chromium")
    return found


class Browser:
    """One headless Chromium page, driven over the DevTools protocol; records events."""

    def __init__(self, profile: Path) -> None:
        from websockets.sync.client import connect

        port = free_port()
        self.proc = subprocess.Popen(
            [
                chromium(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--remote-debugging-port={port}",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (httpx.TransportError, StopIteration):
                assert time.monotonic() < deadline, "Chromium did not start"
                time.sleep(0.2)
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.events: list[dict[str, Any]] = []
        self._id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self._id:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def eval(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return result["result"].get("value")

    def wait(self, expression: str, seconds: float = 60) -> Any:
        deadline = time.monotonic() + seconds
        while not (value := self.eval(expression)):
            assert time.monotonic() < deadline, f"never true: {expression}"
            time.sleep(0.1)
        return value

    def close(self) -> None:
        self.ws.close()
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def browser(tmp_path):
    opened = Browser(tmp_path / "profile")
    yield opened
    opened.close()


SECTION = "document.querySelector('section.op[data-path=\"/v1/embeddings\"]')"


def test_the_api_page_lists_every_operation_and_its_form_sends_a_request(
    server, browser, tiny_models
):
    browser.call("Network.enable")
    browser.call("Page.navigate", url=f"{server.url}/")
    browser.wait("document.getElementById('status')?.dataset.ready === 'true'")
    listed = browser.eval("[...document.querySelectorAll('section.op')].map(s => s.dataset.path)")
    assert sorted(listed) == sorted(
        path for op in OPERATIONS for path in op.paths
    )  # /v2/rerank too
    assert browser.eval(f"{SECTION}.querySelector('pre.schema').textContent").count('"input"')

    text = "the quick brown fox"
    browser.eval(
        f"""(() => {{
          const form = {SECTION}.querySelector('textarea');
          const body = JSON.parse(form.value);
          body.model = {json.dumps(EMBED_ID)};
          body.input = [{json.dumps(text)}];
          form.value = JSON.stringify(body);
          {SECTION}.querySelector('button.send').click();
        }})()"""
    )
    status = browser.wait(f"{SECTION}.querySelector('pre.reply').dataset.status")
    shown = browser.eval(f"{SECTION}.querySelector('pre.reply').textContent")
    assert status == "200", shown
    reply = json.loads(shown.split("\n", 1)[1])
    vector = np.array(reply["data"][0]["embedding"], dtype=np.float32)
    assert float(vector @ embed_oracle(tiny_models[EMBED_ID], [text])[0]) > 0.9999

    # every other form as the page fills it: a served model that can run it, a 2xx
    statuses = browser.eval(
        """(async () => {
          const out = {};
          for (const section of document.querySelectorAll('section.op')) {
            const send = section.querySelector('button.send');
            if (!send) {  // no served model can run it: the page says so instead
              out[section.querySelector('h2').textContent] = 'unavailable';
              continue;
            }
            const reply = section.querySelector('pre.reply');
            reply.dataset.status = '';
            send.click();
            while (!reply.dataset.status) await new Promise(r => setTimeout(r, 50));
            out[section.querySelector('h2').textContent] = reply.dataset.status;
          }
          return out;
        })()"""
    )
    assert len(statuses) == len(listed)
    cards = httpx.get(f"{server.url}/v1/models").json()["data"]
    served = {c for card in cards for c in card["capabilities"]}
    unavailable = {
        f"{op.method}{path}"  # the section's title: method, then path
        for op in OPERATIONS
        for path in op.paths
        if not op.runs_on(frozenset(served))
    }
    # no classifier, sparse or multi-vector model here
    assert unavailable == {
        "POST/v1/classify",
        "POST/classify",
        "POST/predict",
        "POST/embed_sparse",
        "POST/embed_all",
    }
    failed = {op: status for op, status in statuses.items() if not status.startswith("2")}
    assert failed == dict.fromkeys(unavailable, "unavailable")

    fetched = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert f"{server.url}/v1/openapi.json" in fetched and f"{server.url}/v1/embeddings" in fetched
    assert all(url.startswith(server.url) for url in fetched), fetched  # nothing from outside
