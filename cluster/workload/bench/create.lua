-- wrk: POST /api/transactions (a write + an enqueued Celery task) for random accounts.
local accounts = tonumber(os.getenv("FINCH_ACCOUNTS") or "1000")
math.randomseed(os.time())
request = function()
  local body = string.format('{"account": %d, "category": %d, "amount_cents": -%d}',
    math.random(1, accounts), math.random(4, 24), math.random(100, 9999))
  return wrk.format("POST", "/api/transactions", {["Content-Type"] = "application/json"}, body)
end
