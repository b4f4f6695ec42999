-- How many messages were pushed at the head of each list since the last read?
-- (envelope.lua, prepended by the reader, defines tag().)
--
-- Producers LPUSH at the head and consumers pop the tail, so the messages pushed since
-- the last read are those in front of the head that read saw. For each list this
-- finds two tags from the head: `now`, the head as this collection's first call read
-- it, and `before`, the head of the last read; their distance is the number of pushes
-- in between, exactly. A list whose `before` is not within ARGV[2] messages of the head
-- is searched from its tail for as many (the old part may be the short one).
--
-- ARGV[1]: per list: its key, `now`, `before`, each as a 4-byte little-endian length
--          then the bytes.
-- ARGV[2]: the most messages read from each end of one list.
-- ARGV[3]: the most messages read by this call (its work, and so its time, is bounded);
--          a list that would take it past that is left for the next call.
--
-- Returns flat {pushes, ...}, one per list handled (in order; fewer than asked when
-- the budget ran out: the caller sends the rest again): pushes >= 0 when found; -1 when
-- `before` is not in the list, which was read whole (every message in it is new);
-- -2 when it was not found within the bound (unknown).

local lists, bound, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local CHUNK = 64
local out = {}
local pos, len, spent = 1, #lists, 0

local function field(at)
  local n
  n, at = struct.unpack('<I4', lists, at)
  return string.sub(lists, at, at + n - 1), at + n
end

while pos <= len do
  local key, now, before
  key, pos = field(pos)
  now, pos = field(pos)
  before, pos = field(pos)
  local n = redis.pcall('LLEN', key)
  if type(n) ~= 'number' then n = 0 end
  local reach = math.min(n, bound)
  local both = n > reach
  if spent > 0 and spent + reach * (both and 2 or 1) > budget then break end
  local at_now, at_before = nil, nil
  local i = 0
  while i < reach and at_before == nil do
    local chunk = redis.pcall('LRANGE', key, i, math.min(i + CHUNK, reach) - 1)
    if type(chunk) ~= 'table' or #chunk == 0 then break end
    for j = 1, #chunk do
      local t = tag(chunk[j])
      if at_now == nil and t == now then at_now = i + j - 1 end
      if t == before then at_before = i + j - 1; break end
    end
    i = i + #chunk
  end
  spent = spent + i
  if at_before == nil and both then
    -- From the tail: index -1 - k is n - 1 - k from the head.
    local k = 0
    while k < reach and at_before == nil do
      local chunk = redis.pcall('LRANGE', key, -math.min(k + CHUNK, reach), -1 - k)
      if type(chunk) ~= 'table' or #chunk == 0 then break end
      for j = #chunk, 1, -1 do
        if tag(chunk[j]) == before then at_before = n - 1 - (k + #chunk - j); break end
      end
      k = k + #chunk
    end
    spent = spent + k
  end
  if at_before ~= nil and at_now ~= nil and at_before >= at_now then
    out[#out + 1] = at_before - at_now
  elseif at_before == nil and not both then
    out[#out + 1] = -1
  else
    out[#out + 1] = -2
  end
end
return out
