-- Scenario "create": see common.lua.
local c = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function request()
   return c.create(c.user())
end
