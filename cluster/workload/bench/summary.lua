-- wrk: GET /api/accounts/<random id>/summary over the generated id range (FINCH_ACCOUNTS).
local accounts = tonumber(os.getenv("FINCH_ACCOUNTS") or "1000")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/accounts/" .. math.random(1, accounts) .. "/summary")
end
