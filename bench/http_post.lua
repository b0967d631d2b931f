-- http_post.lua - wrk script for bench/http_bench.sh: every request is a POST
-- of one file's bytes, and the run ends with one machine-readable line.
--
--   wrk -t2 -c64 -d5s --latency -s bench/http_post.lua URL -- BODY_FILE [CONTENT_TYPE]
--
-- The request is built once per thread (no request() function, so wrk keeps
-- its static fast path). done() prints
--   WRK rps=... requests=... p50_us=... p90_us=... p99_us=... ... err_status=...
-- where err_status counts answers that were not 2xx/3xx; http_bench.sh
-- rejects a run with any error, so a server answering 4xx/5xx fast cannot
-- pass for a fast server.

function init(args)
   local path = args[1]
   if path == nil then
      error("http_post.lua: usage: wrk ... -s http_post.lua URL -- BODY_FILE [CONTENT_TYPE]")
   end
   local f = assert(io.open(path, "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = args[2] or "application/json"
   -- wrk.init, which calls this function, then formats the request once.
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK rps=%.1f requests=%d duration_s=%.3f mean_us=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d " ..
      "max_us=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests / (summary.duration / 1e6), summary.requests, summary.duration / 1e6,
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
