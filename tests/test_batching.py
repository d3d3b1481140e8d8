import asyncio

from ragtide.batching import Batcher


def test_concurrent_calls_share_one_request():
    calls = []

    async def run(items):
        calls.append(list(items))
        return [i * 10 for i in items]

    async def main():
        b = Batcher(run, max_delay=0.005)
        return await asyncio.gather(*(b.submit(i) for i in range(100)))

    assert asyncio.run(main()) == [i * 10 for i in range(100)]
    assert len(calls) == 1 and calls[0] == list(range(100))


def test_size_bound_splits_batches():
    calls = []

    async def run(items):
        calls.append(len(items))
        return items

    async def main():
        b = Batcher(run, max_items=30, max_delay=1.0)
        return await asyncio.gather(*(b.submit(i) for i in range(100)))

    assert asyncio.run(main()) == list(range(100))
    assert calls[:3] == [30, 30, 30] and sum(calls) == 100


def test_an_idle_batcher_sends_at_once():
    async def run(items):
        return items

    async def main():
        b = Batcher(run, max_delay=60.0)  # a timer that would fail the test if waited for
        return await asyncio.wait_for(b.submit(1), timeout=10)

    assert asyncio.run(main()) == 1


def test_items_arriving_during_a_request_travel_together():
    calls = []

    async def run(items):
        calls.append(list(items))
        await asyncio.sleep(0.05)
        return items

    async def main():
        b = Batcher(run, max_delay=60.0, max_in_flight=1)
        first = asyncio.create_task(b.submit(-1))
        await asyncio.sleep(0.01)  # the first request is in flight
        rest = await asyncio.gather(*(b.submit(i) for i in range(50)))
        return await first, rest

    first, rest = asyncio.run(main())
    assert (first, rest) == (-1, list(range(50)))
    assert calls == [[-1], list(range(50))]


def test_a_bad_item_fails_only_its_caller():
    async def run(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [x.upper() for x in items]

    async def main():
        b = Batcher(run, max_delay=0.005)
        return await asyncio.gather(*(b.submit(x) for x in ["a", "bad", "c"]), return_exceptions=True)

    a, bad, c = asyncio.run(main())
    assert (a, c) == ("A", "C")
    assert isinstance(bad, ValueError)


def test_cancelling_one_caller_spares_the_others():
    seen = []

    async def run(items):
        seen.append(list(items))
        await asyncio.sleep(0.01)
        return items

    async def main():
        b = Batcher(run, max_delay=0.02)
        tasks = [asyncio.create_task(b.submit(i)) for i in range(5)]
        await asyncio.sleep(0)
        tasks[2].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await b.drain()
        return results

    results = asyncio.run(main())
    assert isinstance(results[2], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 2] == [0, 1, 3, 4]
    assert seen == [[0, 1, 3, 4]]  # the cancelled item was never sent
