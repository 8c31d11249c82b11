"""Drive `wrk` (low-CPU C load generator) with a JSON POST body; parse its Lua summary."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["Wrk", "ensure_wrk", "run_wrk"]

# wrk runs this per thread; `done` prints one JSON line with the totals and percentiles.
# BENCH_BODY holds one JSON body per line; with several, connections cycle through them.
LUA = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local bodies = {}
for line in f:lines() do table.insert(bodies, line) end
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = bodies[1]
if #bodies > 1 then
  local i = 0
  request = function()
    i = i % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[i])
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"status":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%d%s}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, classes and classes() or ""))
end
"""
# Appended when status classes are wanted (a response callback costs wrk some speed).
COUNT_STATUSES = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok, throttled, failed = 0, 0, 0 end
function response(status, headers, body)
  if status < 300 then ok = ok + 1
  elseif status == 429 then throttled = throttled + 1
  elseif status >= 500 then failed = failed + 1 end
end
function classes()
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("ok"); b = b + t:get("throttled");
    c = c + t:get("failed") end
  return string.format(',"ok":%d,"throttled":%d,"failed":%d', a, b, c)
end
"""


def ensure_wrk() -> str:
    """The wrk binary; installed with apt-get when missing and we are root (Debian/Ubuntu)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        sys.exit("bench needs wrk: install it (apt-get install wrk / brew install wrk)")
    return found


def run_wrk(
    url: str, body: dict | list[dict], connections: int, seconds: float, statuses: bool = False
) -> dict:
    """POST `body` (or each of a list of bodies in turn) to `url` over `connections`
    keep-alive connections for `seconds`.

    Returns requests/s, p50/p99 in ms and error counts (non-2xx, socket errors); with
    `statuses`, also 2xx, 429 and 5xx counts (`ok`, `throttled`, `failed`).
    """
    with Wrk(url, body, connections, seconds, statuses) as load:
        return load.result()


class Wrk:
    """One wrk run in the background (`with`): several can load a server at once."""

    def __init__(
        self,
        url: str,
        body: dict | list[dict],
        connections: int,
        seconds: float,
        statuses: bool = False,
    ) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="wrk-")
        script = Path(self._scratch.name) / "post.lua"
        script.write_text(LUA + (COUNT_STATUSES if statuses else ""))
        payload = Path(self._scratch.name) / "bodies.jsonl"
        bodies = body if isinstance(body, list) else [body]
        payload.write_text("".join(json.dumps(b) + "\n" for b in bodies))
        self._argv = [
            ensure_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{math.ceil(seconds)}s",  # wrk takes whole seconds only
            "--timeout",
            "120s",
            "-s",
            str(script),
            url,
        ]
        self._env = {**os.environ, "BENCH_BODY": str(payload)}
        self._connections = connections

    def __enter__(self) -> Wrk:
        self._proc = subprocess.Popen(
            self._argv, env=self._env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._scratch.cleanup()

    def result(self) -> dict:
        """Wait for the run to end; its summary."""
        out, err = self._proc.communicate()
        if self._proc.returncode:
            raise RuntimeError(f"wrk failed ({self._proc.returncode}): {(out + err)[-2000:]}")
        line = next(x for x in reversed(out.splitlines()) if x.startswith("{"))
        return _summary(json.loads(line), self._connections)


def _summary(raw: dict, connections: int) -> dict:
    """Requests/s two ways: completed / duration (`rps`), and by Little's law, connections /
    mean latency (`steady_rps`). A run holds few rounds of big requests; a scheduler that
    serves concurrent requests fairly finishes them together, so `rps` undercounts it (the
    work on requests still in flight at the end is lost), while `steady_rps` does not."""
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "timeout"))
    counts = {k: raw[k] for k in ("ok", "throttled", "failed") if k in raw}
    return {
        **counts,
        "rps": round(raw["requests"] / seconds_run, 1),
        "steady_rps": round(connections / (raw["mean_us"] / 1e6), 2) if raw["mean_us"] else 0.0,
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "requests": raw["requests"],
        "non_2xx": raw["status"],
        "socket_errors": errors,
    }
