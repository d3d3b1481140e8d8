"""The private loop behind every engine: calls from other loops and threads."""

import asyncio
import threading

import pytest

from ragtide._loop import LoopThread


@pytest.fixture
def runner():
    r = LoopThread("test")
    yield r
    r.close()


async def _where(value):
    await asyncio.sleep(0)
    return value, threading.current_thread().name


def test_gathered_calls_each_get_their_own_result_on_the_private_loop(runner):
    async def main():
        return await asyncio.gather(*(runner.arun(_where(i)) for i in range(500)))

    results = asyncio.run(main())
    assert [value for value, _ in results] == list(range(500))
    assert {thread for _, thread in results} == {"test-loop"}


def test_errors_reach_only_their_caller(runner):
    async def fail(i):
        raise ValueError(f"bad {i}")

    async def main():
        return await asyncio.gather(
            runner.arun(_where(1)), runner.arun(fail(2)), runner.arun(_where(3)), return_exceptions=True
        )

    ok1, error, ok3 = asyncio.run(main())
    assert ok1[0] == 1 and ok3[0] == 3
    assert isinstance(error, ValueError) and str(error) == "bad 2"
    with pytest.raises(ValueError, match="bad 4"):
        runner.run(fail(4))


def test_cancelling_the_caller_cancels_the_work(runner):
    started, cancelled = threading.Event(), threading.Event()

    async def slow():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main():
        task = asyncio.ensure_future(runner.arun(slow()))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        other = await runner.arun(_where("still works"))
        return other

    assert asyncio.run(main())[0] == "still works"
    assert cancelled.wait(5)


def test_a_fresh_asyncio_run_per_call_works(runner):
    # LlamaIndex's sync paths call asyncio.run each time; the private loop outlives them.
    for i in range(3):
        assert asyncio.run(runner.arun(_where(i)))[0] == i


class _Slots:
    """A stand-in for a batcher: futures of the private loop, settled later, in one go."""

    def __init__(self):
        self.futures = {}

    def start(self, i, *, fail=False):
        if i == "raise":
            raise KeyError("refused before any future")
        future = asyncio.get_running_loop().create_future()
        self.futures[i] = (future, fail, threading.current_thread().name)
        if len(self.futures) == 1:
            asyncio.get_running_loop().call_later(0.05, self.settle)
        return future

    def settle(self):
        for i, (future, fail, _) in self.futures.items():
            if not future.done():
                future.set_exception(ValueError(f"bad {i}")) if fail else future.set_result(i * 10)
        self.futures = {}


def test_submitted_slots_each_get_their_own_answer(runner):
    slots = _Slots()
    threads = []

    def start(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return slots.start(*args, **kwargs)

    async def main():
        calls = [runner.asubmit(start, i, fail=(i == 7)) for i in range(300)] + [runner.asubmit(start, "raise")]
        return await asyncio.gather(*calls, return_exceptions=True)

    *results, refused = asyncio.run(main())
    assert results[:7] == [i * 10 for i in range(7)] and results[8:] == [i * 10 for i in range(8, 300)]
    assert isinstance(results[7], ValueError) and str(results[7]) == "bad 7"
    assert isinstance(refused, KeyError)
    assert set(threads) == {"test-loop"}
    assert asyncio.run(runner.asubmit(start, 3)) == 30  # a fresh caller loop


def test_cancelling_a_submitter_cancels_its_slot_only(runner):
    slots = _Slots()

    async def main():
        tasks = [asyncio.ensure_future(runner.asubmit(slots.start, i)) for i in range(5)]
        while len(slots.futures) < 5:
            await asyncio.sleep(0.001)
        mine = slots.futures[2][0]
        tasks[2].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return results, mine

    results, slot = asyncio.run(main())
    assert isinstance(results[2], asyncio.CancelledError) and slot.cancelled()
    assert [results[i] for i in (0, 1, 3, 4)] == [0, 10, 30, 40]
