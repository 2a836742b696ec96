-- wrk load script: the native route, JSON (a nested-array float32 tensor).
--   wrk -t2 -c16 -d10s -s tests/load/json.lua http://127.0.0.1:8080
-- QDQ_LOAD_ELEMENTS (1024) sets the tensor size, QDQ_AUTH_TOKEN the bearer token. Prints
-- requests/s and failures at the end and exits 1 when any request failed.
local n = tonumber(os.getenv("QDQ_LOAD_ELEMENTS") or "1024")
local pattern = { "-1.0", "-0.5", "0.0", "0.3" }
local values = {}
for i = 1, n do values[i] = pattern[(i - 1) % 4 + 1] end

wrk.method = "POST"
wrk.path = "/quantize-dequantize"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input": [' .. table.concat(values, ",") .. '], "num_bits": 8}'
local token = os.getenv("QDQ_AUTH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end

function done(summary, latency, requests)
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.status + e.timeout
  local s = summary.duration / 1e6
  io.write(string.format("json %d requests of %d elements: %.2f s, %.0f requests/s, %d failed\n",
                         summary.requests, n, s, summary.requests / s, failed))
  if failed > 0 then os.exit(1) end
end
