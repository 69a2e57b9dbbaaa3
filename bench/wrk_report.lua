-- wrk script for bench/run_bench.py: POSTs $WRK_BODY as JSON when it is set
-- (else plain GETs), and prints one machine-readable summary line.
local body = os.getenv("WRK_BODY")
if body and #body > 0 then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'WRK_JSON {"requests": %d, "rps": %.1f, "errors": %d, "p50_ms": %.3f, "p99_ms": %.3f, "mean_ms": %.3f}\n',
    summary.requests, summary.requests / secs, errors, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.mean / 1e3))
end
