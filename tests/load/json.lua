-- wrk load script: the native route, JSON (a nested-array float32 tensor).
--   wrk -t2 -c16 -d10s -s tests/load/json.lua http://127.0.0.1:8080
-- QDQ_LOAD_ELEMENTS (1024) sets the tensor size, QDQ_AUTH_TOKEN the bearer token. Prints
-- requests/s and failures at the end and exits 1 when any request failed.
local load = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib/wrk.lua")
local n = tonumber(os.getenv("QDQ_LOAD_ELEMENTS") or "1024")
local pattern = { "-1.0", "-0.5", "0.0", "0.3" }
local values = {}
for i = 1, n do values[i] = pattern[(i - 1) % 4 + 1] end

wrk.method = "POST"
wrk.path = "/quantize-dequantize"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input": [' .. table.concat(values, ",") .. '], "num_bits": 8}'
load.auth()

done = load.done("json", n)
