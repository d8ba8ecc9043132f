-- wrk: GET /api/transactions for a random account and one of its first pages.
local accounts = tonumber(os.getenv("FINCH_ACCOUNTS") or "1000")
math.randomseed(os.time())
request = function()
  local path = "/api/transactions?account=" .. math.random(1, accounts) .. "&page=" .. math.random(1, 3)
  return wrk.format("GET", path)
end
