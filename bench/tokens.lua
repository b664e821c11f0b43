-- wrk script for bench/tokens.sh: GET with a bearer token taken in turn from the file
-- named by $TOKENS (one token a line), so each connection cycles through all of them.
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
local i = math.random(#tokens)
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
