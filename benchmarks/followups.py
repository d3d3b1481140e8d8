"""Follow-up questions with and without the conversation, per half of the follow-up set.

    python benchmarks/followups.py                      # offline, dense and hybrid, Milvus Lite
    python benchmarks/followups.py --llm-base-url URL --llm-model NAME   # follow-ups rewritten by an LLM
    python benchmarks/followups.py --stub-llm           # the LLM path, through the tests' OpenAI-compatible server

The set (``tests/data/followups.json``) holds 34 conversations over the tutorial's essay and
10-K: a first question, then one or two follow-ups that lean on it; each follow-up carries a
dev-set question's evidence and facts. It was split by conversation before any tuning; the
method was chosen on the tuning half. Each follow-up is asked alone (as a service that reads
only the last message would) and with the conversation before it; retrieval hit@5 and
whether the answer holds the fact are reported. With an LLM, the rewrite call's latency is
reported too (its median and worst, from ``Answer.timings["condense"]``).

``--stub-llm`` drives the LLM path through the tests' OpenAI-compatible server (real HTTP,
streamed), with a stand-in for a model, since no model can be downloaded here: its rewrite
of a follow-up is the question before it joined to the follow-up, and its answer is the
passages' sentence sharing the most words with the question, cited. Those figures measure
the LLM path's plumbing and the rewrite call's cost, not a model's rewriting.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ragtide import RAG
from ragtide.eval import load_exchanges, run_exchanges

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


async def figures(uri: str, modes: list[str], llm: dict[str, str]) -> list[str]:
    exchanges = load_exchanges(ROOT / "tests" / "data" / "followups.json")
    lines = ["mode     half   follow-ups  alone: hit@5  holds   with history: hit@5  holds"]
    condense: list[float] = []
    async with RAG(uri=uri, collection="followups", **llm) as rag:
        await rag.aingest([DATA / "paul_graham_essay.txt", DATA / "uber_2021.pdf"])
        for mode in modes:
            for half in ("tune", "test"):
                chosen = [e for e in exchanges if e.half == half]
                alone = await run_exchanges(rag, chosen, history=False, mode=mode)
                held = await run_exchanges(rag, chosen, history=True, mode=mode)
                a, h = alone["metrics"], held["metrics"]
                lines.append(
                    f"{mode:<8} {half:<6} {len(held['rows']):>10}  {a['hit@5']:>12.2f}  {a['answer_holds_fact']:.2f}"
                    f"  {h['hit@5']:>19.2f}  {h['answer_holds_fact']:.2f}"
                )
                condense += [r["condense_s"] for r in held["rows"] if r.get("condense_s") is not None]
    if condense:
        lines.append(
            f"LLM rewrite of a follow-up: median {statistics.median(condense) * 1000:.0f} ms, "
            f"worst {max(condense) * 1000:.0f} ms over {len(condense)} rewrites"
        )
    return lines


def stand_in(body: dict) -> str:
    """What the stub "model" replies (see the module's docstring)."""
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    if system.startswith("Rewrite the user's last question"):
        asked = [line.removeprefix("user: ") for line in user.splitlines() if line.startswith("user: ")]
        last = user.rsplit("Last question: ", 1)[-1].strip()
        return f"{asked[-1]} {last}" if asked else last
    passages, _, question = user.partition("\n\nQuestion: ")
    words = set(re.findall(r"\w{3,}", question.lower()))
    best, cited = "The passages do not say.", 0
    score = 0
    for n, block in re.findall(r"\[(\d+)\] \([^)]*\)\n(.*?)(?=\n\n\[\d+\] |\Z)", passages, re.S):
        for sentence in re.split(r"(?<=[.!?])\s+", block):
            shared = len(words & set(re.findall(r"\w{3,}", sentence.lower())))
            if shared > score:
                best, cited, score = " ".join(sentence.split()), int(n), shared
    return f"{best} [{cited}]" if cited else best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", default=["dense", "hybrid"], choices=["dense", "lexical", "hybrid"])
    parser.add_argument("--llm-base-url", default="")
    parser.add_argument("--llm-model", default="")
    parser.add_argument("--stub-llm", action="store_true", help="the tests' OpenAI-compatible server, a stand-in model")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-followups.txt")
    args = parser.parse_args()
    stub = None
    if args.stub_llm:
        sys.path.insert(0, str(ROOT / "tests"))
        from llm_server import StubLLM

        stub = StubLLM(stand_in)
        args.llm_base_url, args.llm_model = stub.url, "stand-in"
    llm = {"llm_base_url": args.llm_base_url, "llm_model": args.llm_model} if args.llm_base_url else {}
    started = time.perf_counter()
    uri = str(Path(tempfile.mkdtemp(prefix="ragtide-followups-")) / "followups.db")
    answers = f"the LLM at {args.llm_base_url} ({args.llm_model})" if llm else "offline (extractive)"
    lines = [
        f"# make bench-followups, {time.strftime('%Y-%m-%d')}, Milvus Lite, all-MiniLM-L6-v2, answers {answers}",
        "",
        *asyncio.run(figures(uri, args.modes, llm)),
        "",
        f"{time.perf_counter() - started:.0f} s in all",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if stub is not None:
        stub.close()
        args.out.with_name("results-followups-stub-llm.txt").write_text(text)
    elif not llm:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
