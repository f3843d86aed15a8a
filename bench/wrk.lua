-- One wrk script for every benchmark run. BENCH_DATA names a Lua file (written by bench/run.py)
-- returning { expect = {200, ...}, patch = bool, threads = { {entry, ...}, ... } }, an entry
-- being { method, path, headers, body, uid, version }. Each wrk thread holds one connection
-- and cycles through its own list, so a join and its leave run in order, and PATCH carries
-- the version the previous answer returned. Answers with a status not expected are counted.
local data_path = os.getenv("BENCH_DATA")
local all_threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(all_threads, thread)
end

function init(args)
  local spec = dofile(data_path)
  expect = {}
  for _, s in ipairs(spec.expect) do expect[s] = true end
  mine = spec.threads[((tid - 1) % #spec.threads) + 1]
  patch = spec.patch
  i = 0
  answered = true
  bad = 0
  seen = ""
  versions = {}
  prepared = {}
  for k, e in ipairs(mine) do
    if patch then
      versions[e.uid] = e.version
    else
      prepared[k] = wrk.format(e.method, e.path, e.headers, e.body)
    end
  end
end

function request()
  -- Move on only once the previous request was answered: after a reconnect wrk asks again,
  -- and a leave must not overtake the join it pairs with.
  if answered then
    i = i % #mine + 1
    answered = false
  end
  if patch then
    local e = mine[i]
    current = e.uid
    local v = versions[current]
    local body = string.format('{"data":{"map":"dust","round":%d},"version":%d}', v % 13, v)
    return wrk.format("PATCH", e.path, e.headers, body)
  end
  return prepared[i]
end

function response(status, headers, body)
  answered = true
  if not expect[status] then
    bad = bad + 1
    if bad <= 2 then
      seen = seen .. status .. " " .. string.sub(body or "", 1, 200) .. " | "
    end
  elseif patch then
    local v = string.match(body, '"version":%s*(%d+)')
    if v then versions[current] = tonumber(v) end
  end
end

function done(summary, latency, requests)
  local bad_all, seen_all = 0, ""
  for _, t in ipairs(all_threads) do
    bad_all = bad_all + (t:get("bad") or 0)
    seen_all = seen_all .. (t:get("seen") or "")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"bad":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad_all,
    e.connect, e.read, e.write, e.timeout))
  io.write("BENCHSEEN " .. string.gsub(seen_all, "\n", " ") .. "\n")
end
