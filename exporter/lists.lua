-- Read many kombu priority lists in one atomic call, without moving any message.
-- KEYS: the list keys. Returns {lengths, ends}: lengths[i] = LLEN KEYS[i];
-- ends = flat {i, tail_tag, head_tag, ...} for each non-empty list, where the
-- tags are the delivery tags of the oldest (tail) and newest (head) messages.
-- Only short strings cross the wire: bodies stay in Redis.

local function tag(raw)
  if not raw then return false end
  -- kombu's envelope: {"body": ..., "properties": {..., "delivery_tag": "<uuid>"}}.
  -- A JSON string cannot hold a bare quote, so this matches the real key only.
  local t = string.match(raw, '"delivery_tag"%s*:%s*"([^"]*)"')
  if t then return t end
  local ok, msg = pcall(cjson.decode, raw)
  if ok and type(msg) == 'table' and type(msg.properties) == 'table'
      and msg.properties.delivery_tag ~= nil then
    return tostring(msg.properties.delivery_tag)
  end
  return '?'
end

local lengths = {}
local ends = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('LLEN', key)
  lengths[i] = n
  if n > 0 then
    ends[#ends + 1] = i
    ends[#ends + 1] = tag(redis.call('LINDEX', key, -1))
    ends[#ends + 1] = tag(redis.call('LINDEX', key, 0))
  end
end
return {lengths, ends}
