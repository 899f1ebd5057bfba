"""The translation memory in the sentence cache's Redis (every replica on every machine).

Keys under the cache's prefix, named ``memory.*`` (no second colon, so ``mt cache clear`` and the
cache's stats, which walk ``PREFIX*:*``, leave the memory alone): a hash id -> entry (JSON), a
hash key -> id, a sorted set id -> sequence number, the sequence counter, the generation
(bumped by deletes) and the keys' total UTF-8 bytes (the bound on every worker's fuzzy index).
Writes are Lua scripts: a replacement and the bounds are atomic across replicas. Redis's own
eviction must not be ``allkeys-*`` for the memory to stay (docs/MEMORY.md).
"""

from __future__ import annotations

import json
from typing import Iterator

from .memory_base import MemoryFull, TranslationMemory, full_of_bytes

PAGE = 1000

ADD = """
local max, max_bytes = tonumber(ARGV[1]), tonumber(ARGV[2])
local seen, new, added = {}, 0, 0
for i = 3, #ARGV, 3 do
  local key = ARGV[i + 1]
  if not seen[key] and redis.call('HEXISTS', KEYS[2], key) == 0 then
    new = new + 1
    added = added + #key
  end
  seen[key] = true
end
local count = redis.call('HLEN', KEYS[1])
if count + new > max then return {-1, count, new} end
local size = tonumber(redis.call('GET', KEYS[5]) or '0')
if size + added > max_bytes then return {-2, size, added} end
for i = 3, #ARGV, 3 do
  local id, key = ARGV[i], ARGV[i + 1]
  local old = redis.call('HGET', KEYS[2], key)
  if old then
    redis.call('HDEL', KEYS[1], old)
    redis.call('ZREM', KEYS[3], old)
  end
  local seq = redis.call('INCR', KEYS[4])
  redis.call('HSET', KEYS[1], id, ARGV[i + 2])
  redis.call('HSET', KEYS[2], key, id)
  redis.call('ZADD', KEYS[3], seq, id)
end
redis.call('INCRBY', KEYS[5], added)
return {0, count + new, new}
"""

DELETE = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return 0 end
local key = cjson.decode(value)['key']
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], key) == ARGV[1] then
  redis.call('HDEL', KEYS[2], key)
  redis.call('DECRBY', KEYS[6], #key)
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('INCR', KEYS[5])
return 1
"""


def _decode(value: bytes | None) -> dict | None:
    return None if value is None else json.loads(value)


class RedisMemory(TranslationMemory):
    backend = "redis"

    def __init__(self, client, prefix: str, location: str = "", **limits):
        super().__init__(**limits)
        self._client = client
        self.location = location or prefix
        names = ("entries", "keys", "seq", "counter", "generation", "bytes")
        self._keys = [f"{prefix}memory.{name}" for name in names]
        self._entries, self._by_key, self._seq, self._counter, self._generation, self._bytes = self._keys
        self._add = client.register_script(ADD)
        self._remove = client.register_script(DELETE)

    def _store_errors(self):
        import redis

        return (OSError, redis.exceptions.RedisError)

    def _store_version(self) -> tuple[int, int]:
        seq, generation = self._client.mget(self._counter, self._generation)
        return int(generation or 0), int(seq or 0)

    def _all_keys(self):
        """Every (key, id, seq), read in steps of PAGE (each call within the client's short timeout)."""
        ids = dict(self._client.zscan_iter(self._seq, count=PAGE))
        return [(key.decode("utf-8"), entry_id.decode(), int(ids[entry_id]))
                for key, entry_id in self._client.hscan_iter(self._by_key, count=PAGE) if entry_id in ids]

    def _keys_since(self, seq: int):
        new = self._client.zrangebyscore(self._seq, f"({seq}", "+inf", withscores=True)
        if not new:
            return []
        values = self._client.hmget(self._entries, [entry_id for entry_id, _ in new])
        return [(row["key"], entry_id.decode(), int(score))
                for (entry_id, score), row in zip(new, map(_decode, values)) if row is not None]

    def _targets(self, keys: list[str]) -> dict[str, str]:
        rows = self._rows_by_keys(keys)
        return {key: row["target"] for key, row in rows.items()}

    def _rows(self, ids: list[str]) -> dict[str, dict]:
        found = {}
        for start in range(0, len(ids), PAGE):
            part = ids[start:start + PAGE]
            for entry_id, value in zip(part, self._client.hmget(self._entries, part)):
                if value is not None:
                    found[entry_id] = _public(entry_id, _decode(value))
        return found

    def _rows_by_keys(self, keys: list[str]) -> dict[str, dict]:
        if not keys:
            return {}
        ids = self._client.hmget(self._by_key, keys)
        wanted = {entry_id.decode(): key for key, entry_id in zip(keys, ids) if entry_id is not None}
        return {wanted[entry_id]: row for entry_id, row in self._rows(list(wanted)).items()}

    def _put(self, rows: list[dict]) -> None:
        args = [self.max_entries, self.max_key_bytes]
        for row in rows:
            args += [row["id"], row["key"], json.dumps(row, ensure_ascii=False)]
        status, count, new = self._add(keys=[*self._keys[:4], self._bytes], args=args)
        if status == -2:
            raise full_of_bytes(count, self.max_key_bytes, new)
        if status < 0:
            raise MemoryFull(f"the translation memory holds {count:,} entries of at most {self.max_entries:,}; "
                             f"{new:,} more do not fit (delete some first)")

    def _delete(self, entry_id: str) -> bool:
        return bool(self._remove(keys=self._keys, args=[entry_id]))

    def _all_rows(self) -> Iterator[dict]:
        last = "-inf"
        while True:  # pages by sequence number, oldest first
            page = self._client.zrangebyscore(self._seq, last, "+inf", start=0, num=PAGE, withscores=True)
            if not page:
                return
            ids = [entry_id.decode() for entry_id, _ in page]
            rows = self._rows(ids)
            for entry_id in ids:
                if entry_id in rows:
                    yield rows[entry_id]
            last = f"({int(page[-1][1])}"


def _public(entry_id: str, row: dict) -> dict:
    return {"id": entry_id, "source": row["source"], "target": row["target"], "origin": row["origin"],
            "project": row.get("project"), "created": row["created"]}
