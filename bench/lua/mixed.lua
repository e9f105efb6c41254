-- Scenario "mixed": a blend of the other scenarios, one picked at random per request.
-- The blend comes from the driver as the third script argument, e.g.
-- "list=35,get_one=35,complete=15,update=10,create=5" (weights, any total).
local c = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local picks = {}

function c.init(args)
   for name, weight in (args[3] or ""):gmatch("([%w_]+)=(%d+)") do
      assert(c[name], "unknown scenario in blend: " .. name)
      for _ = 1, tonumber(weight) do picks[#picks + 1] = c[name] end
   end
   assert(#picks > 0, "mixed.lua needs a blend argument")
end

function request()
   return picks[math.random(#picks)](c.user())
end
