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
        return await asyncio.gather(runner.arun(_where(1)), runner.arun(fail(2)), runner.arun(_where(3)),
                                    return_exceptions=True)

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
