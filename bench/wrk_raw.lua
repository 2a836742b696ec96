-- wrk script: POSTs one fixed raw float32 body (application/octet-stream) on every request,
-- and prints a machine-readable summary line at the end:
--   WRK_RESULT rps=... requests=... p50_us=... p99_us=... errors=... status_errors=...
--
-- The body is read from the file named by WRK_BODY_FILE (http_bench.sh writes 1024 float32
-- values there and checks the server's answer to the same bytes with curl first). Without
-- it, 1024 deterministic finite float32 values in +-[0.5, 2) are generated here.

local function generated_body(n)
    local bytes, x = {}, 12345
    for i = 1, n do
        local b = {}
        for k = 1, 3 do -- a small LCG for the three low (mantissa) bytes
            x = (x * 1103515245 + 12345) % 2147483648
            b[k] = math.floor(x / 65536) % 256
        end
        -- top byte 0x3f or 0xbf: exponent 126 or 127, so |value| in [0.5, 2), never NaN/inf
        local top = (i % 2 == 0) and 0x3f or 0xbf
        bytes[i] = string.char(b[1], b[2], b[3], top)
    end
    return table.concat(bytes)
end

local body
local path = os.getenv("WRK_BODY_FILE")
if path and path ~= "" then
    local f = assert(io.open(path, "rb"))
    body = f:read("*a")
    f:close()
else
    body = generated_body(1024)
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/octet-stream"

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
        "WRK_RESULT rps=%.1f requests=%d p50_us=%d p99_us=%d errors=%d status_errors=%d\n",
        summary.requests / secs, summary.requests,
        latency:percentile(50), latency:percentile(99),
        e.connect + e.read + e.write + e.timeout, e.status))
end
