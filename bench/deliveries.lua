-- wrk script: POST signed webhook deliveries, each with its own X-GitHub-Delivery and, with
-- BENCH_SECRET set, its own body (a field appended to the JSON object) signed per request with
-- HMAC-SHA256 through LuaJIT's FFI to OpenSSL's libcrypto. A receiver that refuses a body it has
-- seen before (a replay) must store every one of these; with one fixed body it would measure the
-- refusal instead.
-- Environment: BENCH_BODY_FILE, BENCH_EVENT, BENCH_PATH, BENCH_RUN, and BENCH_SECRET (unique
-- bodies) or BENCH_SIGNATURE (one fixed body, signed by the caller).
local ffi = require("ffi")
ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *d,
                    size_t n, unsigned char *md, unsigned int *md_len);
]]

local counter = 0
local threads = {}
local prefix, head, secret, crypto
local digest = ffi.new("unsigned char[32]")
local digest_len = ffi.new("unsigned int[1]")
local hex = {}
for i = 0, 255 do hex[i] = string.format("%02x", i) end

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
  local body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.path = os.getenv("BENCH_PATH")
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = os.getenv("BENCH_EVENT")
  prefix = os.getenv("BENCH_RUN") .. "-" .. tid .. "-"
  secret = os.getenv("BENCH_SECRET")
  if secret then
    crypto = ffi.load("crypto")
    head = body:gsub("%s+$", ""):sub(1, -2)  -- the object without its closing brace
  else
    wrk.body = body
    wrk.headers["X-Hub-Signature-256"] = os.getenv("BENCH_SIGNATURE")
  end
end

local function sign(body)
  crypto.HMAC(crypto.EVP_sha256(), secret, #secret, body, #body, digest, digest_len)
  local out = {}
  for i = 0, 31 do out[i + 1] = hex[digest[i]] end
  return "sha256=" .. table.concat(out)
end

function request()
  counter = counter + 1
  local id = prefix .. counter
  wrk.headers["X-GitHub-Delivery"] = id
  if secret then
    local body = head .. ',"autopack_bench":"' .. id .. '"}'
    wrk.headers["X-Hub-Signature-256"] = sign(body)
    return wrk.format(nil, nil, nil, body)
  end
  return wrk.format()
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "errors": %d, "non2xx": %d, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, errors, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
