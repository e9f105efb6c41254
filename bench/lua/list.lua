-- Scenario "list": see common.lua.
local c = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function request()
   return c.list(c.user())
end
