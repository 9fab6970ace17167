"""Rate limits shared by every replica: one token bucket per caller in Redis, taken from by one Lua
script on Redis's clock, so N a minute is N across all replicas together. Redis unreachable:
this process's bucket decides (counted as `rate_limit` fallbacks) until it is back."""

from __future__ import annotations

from judge_router.redis_link import RedisDown, RedisLink
from judge_router.service.rate_limits import MemoryRateLimiter

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local per_s = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_s)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / per_s end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_s * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    def __init__(self, link: RedisLink, per_minute: int):
        self.link = link
        self.per_minute = per_minute
        self.local = MemoryRateLimiter(per_minute)
        self._take = link.client.register_script(_TAKE)
        self._args = [per_minute, per_minute / 60.0]

    async def take(self, caller: str) -> float:
        keys = [f"jr:rate:{caller}"]
        try:
            wait = await self.link.run(lambda c: self._take(keys, self._args, c))
        except RedisDown:
            self.link.fell_back("rate_limit")
            return await self.local.take(caller)
        return float(wait)
