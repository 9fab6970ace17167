"""Circuit breakers shared by every replica through Redis: a circuit one replica opens is open for
all, and in half-open exactly one caller, of any replica, gets the trial.

Each transition is one Lua script on Redis's own clock (TIME), so there is no read-modify-write
race between replicas and no clock skew between them. Redis unreachable: this process's
MemoryBreaker decides (counted as `breaker` fallbacks) until it is back.
"""

from __future__ import annotations

from judge_router.config import CircuitBreakerConfig
from judge_router.redis_link import RedisDown, RedisLink
from judge_router.upstream.breaker import MemoryBreaker

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
_STATE = """
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local trial_until = tonumber(redis.call('HGET', KEYS[1], 'trial_until') or '0')
local closed = failures < tonumber(ARGV[1])
"""
_BLOCKED = (
    _NOW
    + _STATE
    + """
if closed then return 0 end
if open_until > now or trial_until > now then return 1 end
return 0
"""
)
_ALLOWS = (
    _NOW
    + _STATE
    + """
if closed then return 1 end
if open_until > now or trial_until > now then return 0 end
redis.call('HSET', KEYS[1], 'trial_until', now + tonumber(ARGV[2]))
return 1
"""
)
_FAILURE = (
    _NOW
    + """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'trial_until', 0)
if failures >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[2]))
  redis.call('SADD', KEYS[2], ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], 86400000 + tonumber(ARGV[2]))
return failures
"""
)
_SUCCESS = """
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""
_OPEN = (
    _NOW
    + """
local found = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local open_until = tonumber(redis.call('HGET', KEYS[1] .. ':' .. name, 'open_until') or '0')
  if open_until > now then
    table.insert(found, name)
    table.insert(found, tostring(open_until - now))
  elseif open_until == 0 then
    redis.call('SREM', KEYS[1], name)
  end
end
return found
"""
)


class RedisBreaker:
    """A Breaker on Redis; `scope` keeps the judge's, the models' and the shadow tests' apart."""

    def __init__(self, link: RedisLink, config: CircuitBreakerConfig, scope: str):
        self.link = link
        self.failures = config.failures
        self.cooldown_ms = max(1, int(config.cooldown_s * 1000))
        self.names_key = f"jr:breaker:{scope}"
        self.local = MemoryBreaker(config)
        client = link.client
        self._blocked = client.register_script(_BLOCKED)
        self._allows = client.register_script(_ALLOWS)
        self._failure = client.register_script(_FAILURE)
        self._success = client.register_script(_SUCCESS)
        self._open = client.register_script(_OPEN)

    def _keys(self, name: str) -> list[str]:
        return [f"{self.names_key}:{name}", self.names_key]

    async def blocked(self, name: str) -> bool:
        try:
            args = [self.failures]
            found = await self.link.run(lambda c: self._blocked(self._keys(name), args, c))
        except RedisDown:
            self.link.fell_back("breaker")
            return await self.local.blocked(name)
        return bool(found)

    async def allows(self, name: str) -> bool:
        try:
            args = [self.failures, self.cooldown_ms]
            found = await self.link.run(lambda c: self._allows(self._keys(name), args, c))
        except RedisDown:
            self.link.fell_back("breaker")
            return await self.local.allows(name)
        return bool(found)

    async def success(self, name: str) -> None:
        await self.local.success(name)
        try:
            await self.link.run(lambda c: self._success(self._keys(name), [name], c))
        except RedisDown:
            self.link.fell_back("breaker")

    async def failure(self, name: str) -> None:
        try:
            args: list[str | int] = [self.failures, self.cooldown_ms, name]
            await self.link.run(lambda c: self._failure(self._keys(name), args, c))
        except RedisDown:
            self.link.fell_back("breaker")
            await self.local.failure(name)

    async def open_circuits(self) -> dict[str, float]:
        try:
            found = await self.link.run(lambda c: self._open([self.names_key], None, c))
        except RedisDown:
            return await self.local.open_circuits()
        pairs = [item.decode() if isinstance(item, bytes) else str(item) for item in found]
        return {pairs[i]: round(int(pairs[i + 1]) / 1000, 3) for i in range(0, len(pairs), 2)}
