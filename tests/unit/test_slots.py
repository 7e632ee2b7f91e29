import asyncio

import pytest

from app.sandbox.slots import RunSlots


async def test_capacity_is_never_exceeded_and_order_is_kept():
    slots = RunSlots(2)
    active, peak, order = 0, 0, []

    async def job(user, n):
        nonlocal active, peak
        async with slots.acquire(user):
            active += 1
            peak = max(peak, active)
            order.append(n)
            await asyncio.sleep(0.01)
            active -= 1

    await asyncio.gather(*(job(f"u{n}", n) for n in range(8)))
    assert peak == 2
    assert order == list(range(8))


async def test_one_run_per_user_at_a_time():
    slots = RunSlots(4)
    events = []

    async def job(n):
        async with slots.acquire("same-user"):
            events.append(("start", n))
            await asyncio.sleep(0.01)
            events.append(("end", n))

    await asyncio.gather(job(1), job(2), job(3))
    assert events == [("start", 1), ("end", 1), ("start", 2), ("end", 2), ("start", 3), ("end", 3)]


async def test_queue_position_is_reported_and_cancel_frees_the_place():
    slots = RunSlots(1)
    positions = []
    gate = asyncio.Event()

    async def holder():
        async with slots.acquire("a"):
            await gate.wait()

    async def waiter(user):
        async with slots.acquire(user, on_queued=positions.append):
            return user

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    second = asyncio.create_task(waiter("b"))
    third = asyncio.create_task(waiter("c"))
    await asyncio.sleep(0.01)
    assert positions == [1, 2] and slots.waiting == 2
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    gate.set()
    assert await third == "c"
    assert positions[-1] == 0  # the wait is over: told once more
    await first
    assert slots.waiting == 0 and slots.running == 0
    async with slots.acquire("d"):  # the slot was not leaked by the cancelled waiter
        pass
