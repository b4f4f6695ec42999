-- Where did these in-flight messages come from? KEYS[1] is kombu's `unacked` hash
-- (delivery_tag -> JSON [message, exchange, routing_key]); ARGV are delivery tags.
-- Returns flat {exchange, routing_key, ...}, false/false for tags acked meanwhile
-- (or when `unacked` is not a hash). The route is at the end of the value, so only its
-- tail is scanned and bodies, which can be large, never leave Redis; a value that is
-- not shaped like kombu's gives routing key '?' after bounded work.

local MAX_DECODE = 65536
local out = {}
for _, t in ipairs(ARGV) do
  local v = redis.pcall('HGET', KEYS[1], t)
  local ex, rk = false, false
  if type(v) == 'string' then
    ex, rk = string.match(string.sub(v, -1024), ',%s*"([^"]*)"%s*,%s*"([^"]*)"%s*%]%s*$')
    if not ex then
      local ok, msg = false, nil
      if #v <= MAX_DECODE then ok, msg = pcall(cjson.decode, v) end
      if ok and type(msg) == 'table' and type(msg[3]) == 'string' then
        ex, rk = tostring(msg[2] or ''), msg[3]
      else
        ex, rk = '', '?'
      end
    end
  end
  out[#out + 1] = ex
  out[#out + 1] = rk
end
return out
