-- Where did these in-flight messages come from? KEYS[1] is kombu's `unacked` hash
-- (delivery_tag -> JSON [message, exchange, routing_key]); ARGV are delivery tags.
-- Returns flat {exchange, routing_key, ...}, false/false for tags acked meanwhile.
-- The route is at the end of the value, so only its tail is scanned and bodies,
-- which can be large, never leave Redis.

local out = {}
for _, t in ipairs(ARGV) do
  local v = redis.call('HGET', KEYS[1], t)
  local ex, rk = false, false
  if v then
    ex, rk = string.match(string.sub(v, -1024), ',%s*"([^"]*)"%s*,%s*"([^"]*)"%s*%]%s*$')
    if not ex then
      local ok, msg = pcall(cjson.decode, v)
      if ok and type(msg) == 'table' then
        ex, rk = tostring(msg[2] or ''), tostring(msg[3] or '')
      else
        ex, rk = '', '?'
      end
    end
  end
  out[#out + 1] = ex
  out[#out + 1] = rk
end
return out
