"""The broker reader for Celery's Redis transport (redis://, rediss://, sentinel://...).

`reader.RedisReader` reads kombu's layout in one pipelined round trip per scrape;
`keys` is kombu's key naming, `discovery` the queues of kombu's binding sets,
`inflight` the `unacked` hash, `ages` and `firstseen` the age of the oldest message.
The Lua scripts (`lists.lua`, `unacked.lua`) ship with the package.
"""
