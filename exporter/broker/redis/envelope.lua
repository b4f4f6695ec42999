-- Shared by lists.lua and locate.lua (the reader prepends it to each): what identifies a
-- message of kombu's lists, read near the end of the element so that the cost does not
-- grow with the body.

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

-- kombu marks a message it puts back (restore_visible, a warm shutdown's unacked
-- messages) with "redelivered": true in its delivery_info, which is followed only by
-- the priority, the body encoding and the delivery tag: within the last 512 bytes.
local REDELIVERED = '"redelivered": true'

local function redelivered(raw)
  if type(raw) ~= 'string' then return false end
  return string.find(raw, REDELIVERED, -512, true) ~= nil
end

