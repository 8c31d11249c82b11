"""Drive `wrk` (low-CPU C load generator) with a JSON POST body; parse its Lua summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["ensure_wrk", "run_wrk"]

# wrk runs this per thread; `done` prints one JSON line with the totals and percentiles.
LUA = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"status":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d%s}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), classes and classes() or ""))
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


def run_wrk(url: str, body: dict, connections: int, seconds: float, statuses: bool = False) -> dict:
    """POST `body` to `url` over `connections` keep-alive connections for `seconds`.

    Returns requests/s, p50/p99 in ms and error counts (non-2xx, socket errors); with
    `statuses`, also 2xx, 429 and 5xx counts (`ok`, `throttled`, `failed`).
    """
    with tempfile.TemporaryDirectory(prefix="wrk-") as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(LUA + (COUNT_STATUSES if statuses else ""))
        payload = Path(scratch) / "body.json"
        payload.write_text(json.dumps(body))
        out = subprocess.run(
            [
                ensure_wrk(),
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "120s",
                "-s",
                str(script),
                url,
            ],
            env={**os.environ, "BENCH_BODY": str(payload)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(x for x in reversed(out.splitlines()) if x.startswith("{"))
    raw = json.loads(line)
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "timeout"))
    counts = {k: raw[k] for k in ("ok", "throttled", "failed") if k in raw}
    return {
        **counts,
        "rps": round(raw["requests"] / seconds_run, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "requests": raw["requests"],
        "non_2xx": raw["status"],
        "socket_errors": errors,
    }
