-- Shared by every scenario script (loaded with dofile): the users file, a
-- per-request user, status counting and the one-line JSON report.
--
-- wrk ... -s bench/lua/<scenario>.lua URL -- <users file> [password] [blend]
-- The users file has one line per user: id TAB email TAB access token TAB task ids (comma-separated).

local M = {}
local threads = {}
local users = {}
local cursor = 0

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_no", #threads)
end

-- Called once per thread before its first request.
function init(args)
   for line in io.lines(args[1]) do
      local uid, email, token, ids = line:match("^(%d+)\t([^\t]+)\t([^\t]+)\t([%d,]*)$")
      if uid then
         local tasks = {}
         for id in ids:gmatch("%d+") do tasks[#tasks + 1] = id end
         users[#users + 1] = {
            id = uid, email = email, auth = "Bearer " .. token,
            tasks = tasks, base = "/api/v1/users/" .. uid .. "/tasks",
         }
      end
   end
   assert(#users > 0, "no users in " .. tostring(args[1]))
   M.password = args[2]
   M.args = args
   math.randomseed(os.time() * 1000 + (thread_no or 0))
   cursor = math.random(#users) - 1   -- threads start at different users, then go round-robin
   statuses, non2xx, sample = {}, 0, nil
   if M.init then M.init(args) end
end

-- The next user, round-robin: every request carries its own user's token and path.
function M.user()
   cursor = cursor % #users + 1
   return users[cursor]
end

function M.task(user)
   return user.tasks[math.random(#user.tasks)]
end

function M.get(path, user)
   return wrk.format("GET", path, { ["Authorization"] = user.auth })
end

function M.send(method, path, user, body)
   local headers = { ["Content-Type"] = "application/json" }
   if user then headers["Authorization"] = user.auth end
   return wrk.format(method, path, headers, body)
end

-- The request of each scenario.
function M.list(u) return M.get(u.base .. "?limit=20", u) end
function M.get_one(u) return M.get(u.base .. "/" .. M.task(u), u) end
function M.create(u)
   return M.send("POST", u.base, u, '{"title":"bench task ' .. math.random(1000000) .. '"}')
end
function M.complete(u)
   local body = math.random(2) == 1 and '{"completed":true}' or '{"completed":false}'
   return M.send("PATCH", u.base .. "/" .. M.task(u) .. "/complete", u, body)
end
function M.update(u)
   return M.send("PUT", u.base .. "/" .. M.task(u), u, '{"title":"bench update ' .. math.random(1000000) .. '"}')
end
-- The bench plays the gateway in front of many clients (the server trusts its
-- X-Forwarded-For): each login comes from an address of its own in 198.18.0.0/15.
function M.login(u)
   local headers = {
      ["Content-Type"] = "application/json",
      ["X-Forwarded-For"] = "198.18." .. math.random(0, 255) .. "." .. math.random(1, 254),
   }
   return wrk.format("POST", "/api/v1/auth/login", headers,
      '{"email":"' .. u.email .. '","password":"' .. M.password .. '"}')
end

-- Every response: count statuses, keep the first non-2xx as a sample for the report.
function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if sample == nil then sample = status .. " " .. string.sub(body or "", 1, 300) end
   end
end

local function json_string(s)
   if s == nil then return "null" end
   s = s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end)
   return '"' .. s .. '"'
end

-- One line, prefixed so the driver finds it among wrk's own output.
function done(summary, latency, requests)
   local counts, bad, first = {}, 0, nil
   for _, thread in ipairs(threads) do
      for code, n in pairs(thread:get("statuses") or {}) do counts[code] = (counts[code] or 0) + n end
      bad = bad + (thread:get("non2xx") or 0)
      first = first or thread:get("sample")
   end
   local parts = {}
   for code, n in pairs(counts) do parts[#parts + 1] = string.format('"%d":%d', code, n) end
   local e = summary.errors
   io.write(string.format(
      '@@bench {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"mean_us":%.1f,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,'
      .. '"statuses":{%s},"sample":%s}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean, bad, e.connect, e.read, e.write, e.timeout,
      table.concat(parts, ","), json_string(first)))
end

return M
