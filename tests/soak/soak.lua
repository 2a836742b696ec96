-- wrk script for tests/soak/soak.sh: a mix of formats and sizes, each request pre-formatted
-- once per thread and sent in turn (threads start at different points of the list).
--
-- SOAK_DATA names the data folder (tests/soak/data, plus big.f32 that soak.sh writes there
-- or beside it in SOAK_WORK). At the end one line is printed for soak.sh to read:
--   SOAK_WRK requests=... errors=... p50_ms=... (latencies of the whole run)

local data = os.getenv("SOAK_DATA") or "tests/soak/data"
local work = os.getenv("SOAK_WORK") or data

local Q = "/quantize-dequantize"
local V2 = "/v2/models/quantize_and_dequantize_v2/infer"

-- path, Content-Type, extra header (name, value) or nil, file, folder
local mix = {
    { Q, "application/json", nil, "readme.json", data },
    { Q .. "?shape=64,64&num_bits=6&axis=0", "application/octet-stream", nil, "ch64x64.f32", data },
    { Q .. "?num_bits=8", "application/x-npy", nil, "f64_32x32.npy", data },
    { Q, "application/json", nil, "json_10x100.json", data },
    { V2, "application/json", nil, "kserve.json", data },
    { Q .. "?dtype=bfloat16&axis=0", "application/x-npy", nil, "bf16_2048.npy", data },
    { Q, "application/json", nil, "json_b64_f16.json", data },
    { Q .. "?num_bits=4", "application/octet-stream", { "Content-Encoding", "gzip" },
      "raw16k.f32.gz", data },
    { Q, "application/json", nil, "readme.json", data },
    { Q .. "?shape=64,64&num_bits=6&axis=0", "application/octet-stream", { "Accept", "application/json" },
      "ch64x64.f32", data },
    { V2, "application/json", nil, "kserve.json", data },
    { Q .. "?shape=256,1024&num_bits=8&axis=0", "application/octet-stream", nil, "big.f32", work },
}

local function slurp(dir, name)
    local f = assert(io.open(dir .. "/" .. name, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

local reqs = {}
local at = 0

function init(args)
    for _, m in ipairs(mix) do
        local h = { ["Content-Type"] = m[2] }
        if m[3] then
            h[m[3][1]] = m[3][2]
        end
        reqs[#reqs + 1] = wrk.format("POST", m[1], h, slurp(m[5], m[4]))
    end
    -- threads begin at different places in the list
    at = math.random(#reqs) - 1
end

function request()
    at = at % #reqs + 1
    return reqs[at]
end

function done(summary, latency, requests)
    local e = summary.errors
    local errors = e.connect + e.read + e.write + e.timeout + e.status
    io.write(string.format(
        "SOAK_WRK requests=%d duration_s=%.1f rps=%.0f bytes=%d errors=%d connect=%d read=%d " ..
        "write=%d timeout=%d status=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f " ..
        "max_ms=%.2f\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        summary.bytes, errors, e.connect, e.read, e.write, e.timeout, e.status,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
