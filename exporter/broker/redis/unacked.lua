-- Where did these in-flight messages come from, and are they scheduled? KEYS[1] is
-- kombu's `unacked` hash (delivery_tag -> JSON [message, exchange, routing_key]); ARGV
-- are delivery tags. Returns flat {exchange, routing_key, eta, ...}: eta is the
-- message's `headers.eta` (Celery's task protocol 2, ISO 8601) or false when it has
-- none; false/false/false for tags acked meanwhile (or when `unacked` is not a hash).
-- The route is at the end of the value and the headers just before the properties, so
-- only the value's tail is scanned and bodies, which can be large, never leave Redis;
-- a value that is not shaped like kombu's gives routing key '?' after bounded work.

local MAX_DECODE = 65536
-- The headers end a few hundred bytes before the value does (the properties follow
-- them); Celery caps argsrepr and kwargsrepr at 1,024 characters each.
local ETA_WINDOW = 16384

local out = {}
for _, t in ipairs(ARGV) do
  local v = redis.pcall('HGET', KEYS[1], t)
  local ex, rk, eta = false, false, false
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
    -- The body is base64 (kombu's Redis transport): no quote in it, so the first
    -- `"eta": "...` of the window is the headers' key (a quote inside a JSON string is
    -- escaped, so `"eta"` followed by a colon is a key). `"eta": null`: not scheduled.
    eta = string.match(string.sub(v, -ETA_WINDOW), '"eta"%s*:%s*"([^"]*)"') or false
  end
  out[#out + 1] = ex
  out[#out + 1] = rk
  out[#out + 1] = eta
end
return out
