/** Lua fragments shared by the library's scripts. */

/** Compares two entry IDs as Redis does (no float rounding of 64-bit sequences). */
export const CMP = `local function cmp(a, b)
  local am, as = string.match(a, '^(%d+)-?(%d*)$')
  local bm, bs = string.match(b, '^(%d+)-?(%d*)$')
  if as == '' then as = '0' end
  if bs == '' then bs = '0' end
  if #am ~= #bm then return #am < #bm and -1 or 1 end
  if am ~= bm then return am < bm and -1 or 1 end
  if #as ~= #bs then return #as < #bs and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end`;

/** Redis server time in ms, so liveness never compares two hosts' clocks. */
export const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Most arguments a script gives one `redis.call` (and `unpack` returns):
 * Lua 5.1 refuses past about 8,000 (LUAI_MAXCSTACK, "too many results to
 * unpack"). An entry another producer wrote may carry more fields than that
 * (Redis takes them): a script that would copy it in one XADD leaves the
 * copy to the client, which has no such limit (outside review AI: one such
 * entry stopped every sink instance that tried to dead-letter it).
 */
export const LUA_CALL_MAX_ARGS = 7900;
