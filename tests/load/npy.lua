-- wrk load script: the native route, a NumPy .npy float32 array.
--   wrk -t2 -c16 -d10s -s tests/load/npy.lua http://127.0.0.1:8080
-- QDQ_LOAD_ELEMENTS (1024) sets the tensor size, QDQ_AUTH_TOKEN the bearer token. Prints
-- requests/s and failures at the end and exits 1 when any request failed.
local load = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib/wrk.lua")
local n = math.ceil(tonumber(os.getenv("QDQ_LOAD_ELEMENTS") or "1024") / 4) * 4
local four = "\0\0\128\191" .. "\0\0\0\191" .. "\0\0\0\0" .. "\154\153\153\62"
-- .npy 1.0: magic, header length (2 bytes LE), the header padded with spaces so that the data
-- starts at a multiple of 64, ending in a newline.
local dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" .. n .. ",), }"
local hlen = math.ceil((10 + #dict + 1) / 64) * 64 - 10
local header = dict .. string.rep(" ", hlen - 1 - #dict) .. "\n"

wrk.method = "POST"
wrk.path = "/quantize-dequantize?num_bits=8"
wrk.headers["Content-Type"] = "application/x-npy"
wrk.body = "\147NUMPY\1\0" .. string.char(hlen % 256, math.floor(hlen / 256)) .. header
           .. string.rep(four, n / 4)
load.auth()

done = load.done("npy", n)
