-- What the wrk load scripts share: the bearer token and the closing line. A script loads it with
--   local load = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib/wrk.lua")
local M = {}

-- QDQ_AUTH_TOKEN, when set, as the Authorization header of every request.
function M.auth()
  local token = os.getenv("QDQ_AUTH_TOKEN")
  if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
end

-- wrk's done(): requests/s and failures of the run, exit status 1 when any request failed.
function M.done(label, n)
  return function(summary, latency, requests)
    local e = summary.errors
    local failed = e.connect + e.read + e.write + e.status + e.timeout
    local s = summary.duration / 1e6
    io.write(string.format("%s %d requests of %d elements: %.2f s, %.0f requests/s, %d failed\n",
                           label, summary.requests, n, s, summary.requests / s, failed))
    if failed > 0 then os.exit(1) end
  end
end

return M
