"""The broker reader for Celery's Redis transport (redis://, rediss://, sentinel://...).

`reader.RedisReader` reads kombu's layout in one pipelined round trip per scrape (one
more when a list was both pushed to and consumed between two scrapes); `lists` keeps
the queue lists' state between reads, `keys` is kombu's key naming, `discovery` the
queues of kombu's binding sets, `inflight` the `unacked` hash (scheduled and overdue
messages included), `ages` and `firstseen` the age of the oldest message. The Lua
scripts (`envelope.lua`, the prelude of `lists.lua` and `locate.lua`; `unacked.lua`)
ship with the package.
"""
