/**
 * The token buckets' Redis side (rate-limiter.ts explains the model). Both scripts run on Redis's clock, so gateway
 * replicas whose clocks drift still agree. A bucket is a hash {t: tokens left, ts: when t was written}; it refills
 * at limit/60000 per ms up to `limit` and expires once it would be full again.
 *
 * ADMIT_BATCH admits every request that reached one gateway in one turn of its event loop, in one round trip:
 * KEYS are the batch's buckets, each once; ARGV holds, per request in arrival order, n and then n quadruples
 * (index into KEYS, limit, cost, grant). Requests are decided in that order, each seeing what the ones before it
 * debited, so the outcome is what n separate calls would have given. Each request debits all of its buckets or none.
 * An admitted request also takes `grant` tokens more from a bucket that still holds them after its cost (the
 * gateway's local allowance, local-allowance.ts). The reply holds, per request: 1 or 0 (admitted), then per bucket
 * the tokens left (before the debit when refused; a string, as Lua numbers would be truncated to integers) and the
 * tokens granted.
 */
export const ADMIT_BATCH = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local level = {}
local limitOf = {}
local debited = {}
local function levelOf(k, limit)
  local t = level[k]
  if t == nil then
    local stored = redis.call('HMGET', KEYS[k], 't', 'ts')
    t = tonumber(stored[1]) or limit
    local ts = tonumber(stored[2]) or nowMs
    t = t + math.max(0, nowMs - ts) * limit / 60000
  end
  return math.min(limit, t)
end
local out = {}
local i = 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local denied = false
  local cur = {}
  for j = 0, n - 1 do
    local k = tonumber(ARGV[i + 1 + 4 * j])
    local limit = tonumber(ARGV[i + 2 + 4 * j])
    local cost = tonumber(ARGV[i + 3 + 4 * j])
    cur[j] = levelOf(k, limit)
    level[k] = cur[j]
    if cur[j] < math.min(cost, limit) then denied = true end
  end
  table.insert(out, denied and 0 or 1)
  for j = 0, n - 1 do
    local k = tonumber(ARGV[i + 1 + 4 * j])
    local t = cur[j]
    local granted = 0
    if not denied then
      t = t - tonumber(ARGV[i + 3 + 4 * j])
      local grant = tonumber(ARGV[i + 4 + 4 * j])
      if grant > 0 and t >= grant then
        granted = grant
        t = t - grant
      end
      level[k] = t
      limitOf[k] = tonumber(ARGV[i + 2 + 4 * j])
      debited[k] = true
    end
    table.insert(out, tostring(t))
    table.insert(out, granted)
  end
  i = i + 1 + 4 * n
end
for k in pairs(debited) do
  local limit = limitOf[k]
  redis.call('HSET', KEYS[k], 't', tostring(level[k]), 'ts', nowMs)
  redis.call('PEXPIRE', KEYS[k], math.ceil((limit - level[k]) / (limit / 60000)) + 1000)
end
return out
`;

/** KEYS: buckets; ARGV: per bucket (limit, tokens to debit; negative refunds). */
export const SETTLE = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local delta = tonumber(ARGV[2 * i])
  local rate = limit / 60000
  local stored = redis.call('HMGET', KEYS[i], 't', 'ts')
  local t = tonumber(stored[1]) or limit
  local ts = tonumber(stored[2]) or nowMs
  t = math.min(limit, t + math.max(0, nowMs - ts) * rate) - delta
  t = math.min(limit, t)
  redis.call('HSET', KEYS[i], 't', tostring(t), 'ts', nowMs)
  redis.call('PEXPIRE', KEYS[i], math.ceil((limit - t) / rate) + 1000)
end
return 1
`;
