"""Follow-up questions with and without the conversation, per half of the follow-up set.

    python benchmarks/followups.py                      # offline, dense and hybrid, Milvus Lite
    python benchmarks/followups.py --llm-base-url URL --llm-model NAME   # follow-ups rewritten by an LLM

The set (``tests/data/followups.json``) holds 34 conversations over the tutorial's essay and
10-K: a first question, then one or two follow-ups that lean on it; each follow-up carries a
dev-set question's evidence and facts. It was split by conversation before any tuning; the
method was chosen on the tuning half. Each follow-up is asked alone (as a service that reads
only the last message would) and with the conversation before it; retrieval hit@5 and
whether the answer holds the fact are reported. With an LLM, the rewrite call's latency is
reported too (its median and worst, from ``Answer.timings["condense"]``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", default=["dense", "hybrid"], choices=["dense", "lexical", "hybrid"])
    parser.add_argument("--llm-base-url", default="")
    parser.add_argument("--llm-model", default="")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-followups.txt")
    args = parser.parse_args()
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
    if not llm:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
