-- wrk load script: the native route, raw little-endian float32 bytes.
--   wrk -t2 -c16 -d10s -s tests/load/raw.lua http://127.0.0.1:8080
-- QDQ_LOAD_ELEMENTS (1024) sets the tensor size, QDQ_AUTH_TOKEN the bearer token. Prints
-- requests/s and failures at the end and exits 1 when any request failed.
local load = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib/wrk.lua")
local n = math.ceil(tonumber(os.getenv("QDQ_LOAD_ELEMENTS") or "1024") / 4) * 4
-- -1, -0.5, 0, 0.3 as float32 little-endian (0xbf800000, 0xbf000000, 0, 0x3e99999a).
local four = "\0\0\128\191" .. "\0\0\0\191" .. "\0\0\0\0" .. "\154\153\153\62"

wrk.method = "POST"
wrk.path = "/quantize-dequantize?shape=" .. n .. "&num_bits=8"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.body = string.rep(four, n / 4)
load.auth()

done = load.done("raw", n)
