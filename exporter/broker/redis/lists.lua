-- Read many kombu priority lists in one atomic call, without moving any message.
--
-- ARGV[1]: the list keys, each as a 4-byte little-endian length then the key's bytes
--          (binary safe; one argument instead of thousands keeps the call cheap).
-- ARGV[2]: per list, a 4-byte little-endian signed integer: the length the list had
--          at the last read, -1 when unknown, or -2 - length to check its tail anyway.
-- ARGV[3]: for every ARGV[5]-th list from list ARGV[4] on (the lists due for a check,
--          whether known or not), in order, its tail's tag at the last read,
--          length-prefixed like the keys (empty when unknown).
--
-- Returns {changes, ends}:
--   changes = flat {i, length, ...} for every list whose length differs from ARGV[2]
--   ends    = flat {i, tail_tag, head_tag or false, ...} for every non-empty list whose
--             length changed (or was unknown), or whose tail is not the one ARGV[3]
--             names: the tags of its oldest (tail) and newest (head) messages; head
--             false when the list holds one message.
-- LLEN and LINDEX only: a list whose length is unchanged costs one cheap call (and one
-- LINDEX when due for a check), and only short tags cross the wire (bodies stay in Redis).

local MARK = '"delivery_tag": "'

local function tag(raw)
  if type(raw) ~= 'string' then return false end
  -- kombu's envelope: {"body": ..., "properties": {..., "delivery_tag": "<uuid>"}}.
  -- "properties" comes last, so look only near the end: the cost then does not grow
  -- with the body. A JSON string cannot hold a bare quote, so the mark is the real key.
  local s, e = string.find(raw, MARK, -128, true)  -- where kombu puts it: the end
  if not s then s, e = string.find(raw, MARK, -1024, true) end
  if s then
    local stop = string.find(raw, '"', e + 1, true)
    if stop then return string.sub(raw, e + 1, stop - 1) end
  end
  local t = string.match(string.sub(raw, -4096), '"delivery_tag"%s*:%s*"([^"]*)"')
  if t then return t end
  -- Not a kombu envelope: its size and both ends stand in for an identity, so that a
  -- change of the oldest message is still seen. Bounded work whatever the size.
  return '~' .. #raw .. ':' .. string.sub(raw, 1, 24) .. string.sub(raw, -24)
end

local keys, state, olds = ARGV[1], ARGV[2], ARGV[3]
local first_due, every = tonumber(ARGV[4]), tonumber(ARGV[5])
local changes, ends = {}, {}
local pos, i, opos = 1, 0, 1
local len = #keys
while pos <= len do
  i = i + 1
  local n_key
  n_key, pos = struct.unpack('<I4', keys, pos)
  local key = string.sub(keys, pos, pos + n_key - 1)
  pos = pos + n_key
  local prev = struct.unpack('<i4', state, 4 * i - 3)
  local known = prev
  if prev <= -2 then known = -2 - prev end
  -- pcall: a key of another type under a queue's name (WRONGTYPE) reads as empty
  -- instead of failing the whole scrape.
  local n = redis.pcall('LLEN', key)
  if type(n) ~= 'number' then n = 0 end
  local old_at, old_len = 0, -1
  if i >= first_due and (i - first_due) % every == 0 then
    old_len, old_at = struct.unpack('<I4', olds, opos)
    opos = old_at + old_len
  end
  if n ~= known then
    changes[#changes + 1] = i
    changes[#changes + 1] = n
  end
  if n > 0 and (n ~= known or prev < 0) then
    local tail = tag(redis.pcall('LINDEX', key, -1))
    if n ~= known or prev == -1 or tail ~= string.sub(olds, old_at, old_at + old_len - 1) then
      ends[#ends + 1] = i
      ends[#ends + 1] = tail
      if n > 1 then
        ends[#ends + 1] = tag(redis.pcall('LINDEX', key, 0))
      else
        ends[#ends + 1] = false
      end
    end
  end
end
return {changes, ends}
