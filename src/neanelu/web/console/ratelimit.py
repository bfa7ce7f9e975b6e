"""Failed logins counted in Redis per username and per client address, in a fixed window.

Both counters are checked before the password is: once either is over its cap, even the right
password is refused until the window ends, so guessing cannot go faster than the cap.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

WINDOW_S = 900
MAX_PER_USER = 5
MAX_PER_ADDRESS = 20


def _keys(prefix: str, username: str, address: str) -> tuple[str, str]:
    # Hashed: the key names themselves should not list usernames for anyone browsing Redis.
    user = hashlib.sha256(username.encode()).hexdigest()[:32]
    return f"{prefix}:console:login:u:{user}", f"{prefix}:console:login:a:{address}"


async def retry_after(redis: Redis, prefix: str, username: str, address: str) -> int:
    """Seconds until another attempt is allowed (0: allowed now)."""
    user_key, addr_key = _keys(prefix, username, address)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(user_key)
        pipe.ttl(user_key)
        pipe.get(addr_key)
        pipe.ttl(addr_key)
        user_n, user_ttl, addr_n, addr_ttl = await pipe.execute()
    waits = [0]
    if user_n is not None and int(user_n) >= MAX_PER_USER:
        waits.append(max(int(user_ttl), 1))
    if addr_n is not None and int(addr_n) >= MAX_PER_ADDRESS:
        waits.append(max(int(addr_ttl), 1))
    return max(waits)


async def record_failure(redis: Redis, prefix: str, username: str, address: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        for key in _keys(prefix, username, address):
            # The window starts with the first failure (SET NX EX); INCR keeps its expiry.
            pipe.set(key, 0, ex=WINDOW_S, nx=True)
            pipe.incr(key)
        await pipe.execute()


async def clear_user(redis: Redis, prefix: str, username: str, address: str) -> None:
    """After a successful login the user's counter starts over; the address' does not."""
    await redis.delete(_keys(prefix, username, address)[0])
