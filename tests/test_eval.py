import json

import pytest

from ragtide.cli import main as cli
from ragtide.eval import evaluate, hit, load_beir, mrr, ndcg, recall


def test_metrics_by_hand():
    ranking = ["a", "b", "c"]
    relevant = {"b": 1, "d": 1}
    # DCG = 1/log2(3); ideal DCG = 1 + 1/log2(3)
    assert ndcg(ranking, relevant, 10) == pytest.approx(0.63093 / 1.63093, abs=1e-4)
    assert mrr(ranking, relevant, 10) == 0.5
    assert mrr(ranking, relevant, 1) == 0.0
    assert recall(ranking, relevant, 2) == 0.5
    assert (hit(ranking, relevant, 1), hit(ranking, relevant, 5)) == (0.0, 1.0)
    assert ndcg(["b", "d"], relevant, 10) == pytest.approx(1.0)
    # Graded relevance: gain is the grade (trec_eval's default).
    assert ndcg(["x", "y"], {"x": 1, "y": 2}, 10) == pytest.approx((1 + 2 / 1.58496) / (2 + 1 / 1.58496), abs=1e-4)


def test_evaluate_conventions():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {"q1": {"a": 0.5, "z": 0.5}}  # tie: trec_eval breaks it by doc id, descending
    result = evaluate(qrels, run)
    # q3 has no relevant document and is left out; q2 has no hits and scores 0.
    assert result["mrr@10"] == pytest.approx((0.5 + 0.0) / 2)
    assert result["hit@1"] == 0.0 and result["hit@5"] == 0.5


def _beir(tmp_path):
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    docs = {
        "d1": ("Tides", "Tides are caused by the gravitational pull of the moon and the sun."),
        "d2": ("Volcanoes", "A volcano erupts when magma rises through the crust."),
        "d3": ("Photosynthesis", "Plants turn sunlight, water and carbon dioxide into sugar."),
        "d4": ("Bees", "Honey bees communicate the location of flowers with a waggle dance."),
    }
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x, "metadata": {}}) + "\n" for k, (t, x) in docs.items())
    )
    queries = {
        "q1": "what makes the sea rise and fall",
        "q2": "how do plants make food",
        "q3": "how do bees share where flowers are",
    }
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()))
    (root / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq2\td3\t1\r\nq3\td4\t1\r\n")
    return root


def test_beir_loader_handles_crlf_and_titles(tmp_path):
    bench = load_beir(_beir(tmp_path))
    assert bench.qrels == {"q1": {"d1": 1}, "q2": {"d3": 1}, "q3": {"d4": 1}}
    assert bench.corpus["d1"].startswith("Tides Tides are caused")


def test_eval_end_to_end(tmp_path, capsys):
    root = _beir(tmp_path)
    status = cli(
        ["eval", "beir", str(root), "--uri", str(tmp_path / "e.db"), "--json", "--top-k", "10", "--mode", "dense"]
    )
    assert status == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["metrics"]) >= {"ndcg@10", "mrr@10", "recall@100", "hit@5"}
    assert result["metrics"]["hit@1"] == 1.0 and result["metrics"]["ndcg@10"] == 1.0
    assert result["corpus_size"] == 4 and result["queries"] == 3 and result["model"] == "all-MiniLM-L6-v2"
