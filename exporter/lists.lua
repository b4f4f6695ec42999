-- Read many kombu priority lists in one atomic call, without moving any message.
-- KEYS: the list keys; ARGV[i]: the length KEYS[i] had at the last scrape (-1 when
-- unknown). The head tag is read only for lists that grew: new messages arrived. Returns {lengths, ends}:
-- lengths[i] = LLEN KEYS[i]; ends = flat {i, tail_tag, head_tag or false, ...} for
-- each non-empty list: the delivery tags of the oldest (tail) and newest (head)
-- messages. Only short strings cross the wire: bodies stay in Redis.

local MARK = '"delivery_tag": "'

local function tag(raw)
  if not raw then return false end
  -- kombu's envelope: {"body": ..., "properties": {..., "delivery_tag": "<uuid>"}}.
  -- "properties" comes last, so look in the tail first: the cost then does not grow
  -- with the body. A JSON string cannot hold a bare quote, so the mark is the real key.
  local s, e = string.find(raw, MARK, -400, true)
  if s then
    local stop = string.find(raw, '"', e + 1, true)
    if stop then return string.sub(raw, e + 1, stop - 1) end
  end
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
  -- pcall: a key of another type under a queue's name (WRONGTYPE) reads as empty
  -- instead of failing the whole scrape.
  local n = redis.pcall('LLEN', key)
  if type(n) ~= 'number' then n = 0 end
  lengths[i] = n
  if n > 0 then
    ends[#ends + 1] = i
    ends[#ends + 1] = tag(redis.call('LINDEX', key, -1))
    if n > 1 and n > tonumber(ARGV[i] or -1) then
      ends[#ends + 1] = tag(redis.call('LINDEX', key, 0))
    else
      ends[#ends + 1] = false
    end
  end
end
return {lengths, ends}
