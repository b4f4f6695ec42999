-- Read many kombu priority lists in one atomic call, without moving any message.
-- (envelope.lua, prepended by the reader, defines tag() and redelivered().)
--
-- ARGV[1]: the list keys, each as a 4-byte little-endian length then the key's bytes
--          (binary safe; one argument instead of thousands keeps the call cheap).
-- ARGV[2]: per list, a 4-byte little-endian signed integer: the length the list had
--          at the last read, -1 when unknown, or -2 - length to check its tail anyway.
-- ARGV[3]: for every list checked (-2 - length), in order, its tail's tag at the last
--          read, length-prefixed like the keys (empty when unknown).
-- ARGV[4]: at most this many messages counted by `restored` below.
--
-- Returns {changes, ends}:
--   changes = flat {i, length, ...} for every list whose length differs from ARGV[2]
--   ends    = flat {i, tail_tag, head_tag or false, restored, ...} for every non-empty
--             list whose length changed (or was unknown), or whose tail is not the one
--             ARGV[3] names: the tags of its oldest (tail) and newest (head) messages;
--             head false when the list holds one message. restored: 0 when the tail is
--             not a message kombu put back; else how many put-back messages lie in a
--             row from the tail (at most ARGV[4]), or -1 when the tail is a put-back
--             message the last read already saw there (not counted again).
-- LLEN and LINDEX only: a list whose length is unchanged costs one cheap call (and one
-- LINDEX when checked), and only short tags cross the wire (bodies stay in Redis).

local keys, state, olds = ARGV[1], ARGV[2], ARGV[3]
local max_restored = tonumber(ARGV[4])
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
  local old = nil
  if prev <= -2 then
    known = -2 - prev
    local old_len, old_at
    old_len, old_at = struct.unpack('<I4', olds, opos)
    opos = old_at + old_len
    old = string.sub(olds, old_at, old_at + old_len - 1)
  end
  -- pcall: a key of another type under a queue's name (WRONGTYPE) reads as empty
  -- instead of failing the whole scrape.
  local n = redis.pcall('LLEN', key)
  if type(n) ~= 'number' then n = 0 end
  if n ~= known then
    changes[#changes + 1] = i
    changes[#changes + 1] = n
  end
  if n > 0 and (n ~= known or prev < 0) then
    local raw = redis.pcall('LINDEX', key, -1)
    local tail = tag(raw)
    if n ~= known or prev == -1 or tail ~= old then
      local restored = 0
      if redelivered(raw) then
        if old ~= nil and tail == old then
          restored = -1
        else
          restored = 1
          while restored < max_restored and restored < n
            and redelivered(redis.pcall('LINDEX', key, -1 - restored)) do
            restored = restored + 1
          end
        end
      end
      ends[#ends + 1] = i
      ends[#ends + 1] = tail
      if n > 1 then
        ends[#ends + 1] = tag(redis.pcall('LINDEX', key, 0))
      else
        ends[#ends + 1] = false
      end
      ends[#ends + 1] = restored
    end
  end
end
return {changes, ends}
