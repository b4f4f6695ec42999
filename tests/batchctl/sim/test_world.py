"""The world: the broker's lists and the pods, second by second."""

from __future__ import annotations

from batchctl.config import BatchConfig
from batchctl.sim import World
from tests.support.sim import trace


def test_priority_lists_are_served_in_step_order() -> None:
    t = trace(arrivals=[[0, 100]], priorities={0: 0.5, 9: 0.5})
    world = World(t, BatchConfig(queue="batch0", deployment="d"), grace_seconds=30)
    world.enqueue(0.0, 100)
    assert world.lengths == [50, 50]
    world.scale(1, 0.0)
    world.advance(20)  # the pod is ready: it prefetches 16 and starts 4, all from step 0
    assert world.lengths == [30, 50]


def test_arrivals_follow_the_shares_exactly() -> None:
    t = trace(priorities={0: 0.1, 3: 0.3, 9: 0.6})
    world = World(t, BatchConfig(queue="batch0", deployment="d"), grace_seconds=30)
    for s in range(1000):
        world.enqueue(float(s), 1)  # one at a time: the shares still hold on aggregate
    assert world.lengths == [100, 300, 600]
    world.enqueue(1000.0, 7)
    assert sum(world.lengths) == 1007


def test_warm_shutdown_returns_prefetched_and_finishes_running() -> None:
    t = trace(arrivals=[[0, 100]], task_seconds={"mean": 10.0, "p99": 20.0})
    world = World(t, BatchConfig(queue="batch0", deployment="d"), grace_seconds=300)
    world.enqueue(0.0, 100)
    world.scale(1, 0.0)
    world.advance(20)
    assert world.waiting == 80 and world.in_flight() == 20
    world.scale(0, 21.0)
    assert world.waiting == 96  # the 16 prefetched went back
    for s in range(21, 200):
        world.advance(s)
    assert world.completed == 4 and world.interrupted == 0 and not world.pods
