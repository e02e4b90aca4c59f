"""The standard suite on a nano model overfit on a few QA pairs (forget + retain), with
never-trained holdout questions of the same template as membership non-members."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eval_helpers import documents, trained_pair, workspace_with_models
from lethe.errors import InputError
from lethe.eval.items import answer_ids, question_prompt_ids, sample, split_items
from lethe.eval.suite import SuiteConfig, evaluate_version, render_suite, run_suite

torch.set_num_threads(1)
CONFIG = SuiteConfig(max_new_tokens=40, batch_size=4)


@pytest.fixture(scope="module")
def trained():
    tokenizer, model, _ = trained_pair()
    docs = documents()
    return tokenizer, model, docs, run_suite(model, tokenizer, docs, CONFIG)


def test_a_memorised_model_scores_as_memorised(trained) -> None:
    _, _, _, result = trained
    forget, holdout = result.metrics["forget"], result.metrics["holdout"]
    assert forget["items"] == 3 and forget["text_items"] == 1
    assert forget["loss"] < 0.05 and forget["token_accuracy"] == 1.0
    assert forget["exact_match"] == 1.0 and forget["rouge_l_recall"] == 1.0 and forget["token_f1"] == 1.0
    assert forget["extraction_strength"] == 1.0 and forget["answer_probability"] > 0.95
    assert forget["exact_memorisation"] == 1.0 and forget["verbatim_rouge"] == 1.0
    # never-trained questions: high loss, no exact answers
    assert holdout["loss"] > 1.0 and holdout["exact_match"] == 0.0
    for attack in ("loss", "zlib", "min_k", "min_k_plus_plus"):
        assert forget[f"mia_auc_{attack}"] == 1.0
        assert result.metrics["retain"][f"mia_auc_{attack}"] == 1.0
    assert "mia_auc_loss" not in holdout  # the holdout is the reference, not a member set
    # truth ratio: the model prefers... nothing it was not trained on (paraphrases are unseen),
    # but the statistics are defined and in range
    assert 0.0 <= forget["truth_ratio_stat"] <= 1.0 and 0.0 < forget["truth_ratio_forget_stat"] <= 1.0


def test_metrics_agree_with_a_direct_computation(trained) -> None:
    tokenizer, model, _, result = trained
    qa = result.splits["holdout"].qa
    item = qa.items[1]
    prompt = question_prompt_ids(tokenizer, item.question)
    answer = answer_ids(tokenizer, item.answer, end=True)  # scored with its closing token, as TOFU does
    with torch.no_grad():
        logits = model(torch.tensor([prompt + answer])).logits[0].float()
    log_probs = torch.log_softmax(logits[len(prompt) - 1 : -1], -1)
    nll = -log_probs.gather(-1, torch.tensor(answer)[:, None]).mean().item()
    assert qa.loss[1] == pytest.approx(nll, rel=1e-4)
    losses = []
    for variant in [item.paraphrased_answer, *item.perturbed_answers]:
        ids = answer_ids(tokenizer, variant, end=True)
        with torch.no_grad():
            lg = model(torch.tensor([prompt + ids])).logits[0].float()
        lp = torch.log_softmax(lg[len(prompt) - 1 : -1], -1)
        losses.append(-lp.gather(-1, torch.tensor(ids)[:, None]).mean().item())
    ratio = math.exp(losses[0] - np.mean(losses[1:]))
    assert qa.truth_ratios[1] == pytest.approx(ratio, rel=1e-4)
    p = np.exp(-np.array([nll] + losses[1:]))
    assert qa.normalised_probability[1] == pytest.approx(p[0] / p.sum(), rel=1e-4)
    assert result.metrics["holdout"]["answer_probability"] == pytest.approx(np.mean(np.exp(-qa.loss)))
    assert result.metrics["holdout"]["loss"] == pytest.approx(qa.loss.mean())


def test_a_retain_only_model_does_not_know_the_forget_set() -> None:
    tokenizer, _, retain_model = trained_pair()
    docs = documents()
    result = run_suite(
        retain_model, tokenizer, {"forget": docs["forget"], "holdout": docs["holdout"]}, CONFIG.replace(generate=False)
    )
    forget = result.metrics["forget"]
    assert forget["loss"] > 1.0
    assert "exact_match" not in forget  # no generation asked
    assert forget["mia_auc_loss"] < 1.0


def test_sampling_is_seeded_and_capped() -> None:
    items = list(range(50))
    assert sample(items, 10, 3) == sample(items, 10, 3)
    assert sample(items, 10, 3) != sample(items, 10, 4)
    assert sample(items, 10, 3) == sorted(sample(items, 10, 3))
    assert sample(items, None, 0) == items and sample(items, 80, 0) == items
    docs = documents()["retain"] * 4
    split = split_items(docs, max_items=6, seed=0)
    assert len(split.qa) == 6 and split.total_qa == 20 and len(split.text) == 4


def test_erased_documents_are_counted_not_scored(trained) -> None:
    tokenizer, model, docs, _ = trained
    erased = dict(docs["forget"][0], content=None, data=None)
    result = run_suite(model, tokenizer, {"forget": [erased, *docs["forget"][1:]]}, CONFIG.replace(generate=False))
    assert result.splits["forget"].counts["erased"] == 1
    assert result.metrics["forget"]["items"] == 2


def test_evaluate_version_stores_in_the_ledger(tmp_path) -> None:
    ws, _, target, _, _ = workspace_with_models(tmp_path)
    result = evaluate_version(
        ws, "target", forget="test/forget", retain="test/retain", holdout="test/holdout", config=CONFIG
    )
    assert result["version_id"] == target.id and result["stored"]
    assert result["metrics"]["forget"]["exact_match"] == 1.0
    rows = ws.ledger.evaluations(version_id=target.id, benchmark="suite")
    stored = {(r.split, r.metric): r.value for r in rows}
    assert stored[("forget", "mia_auc_loss")] == 1.0
    assert stored[("holdout", "loss")] == pytest.approx(result["metrics"]["holdout"]["loss"])
    assert all(r.run_id == result["run_id"] for r in rows)
    run = ws.ledger.run(result["run_id"])
    assert run.kind == "eval" and run.status == "succeeded"
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render_suite(result))
    assert "mia_auc_loss" in console.export_text()
    # default splits: what the version trained on, and never-trained *holdout* collections
    default = evaluate_version(ws, "target", config=CONFIG.replace(generate=False), store=False)
    assert set(default["metrics"]) == {"retain", "holdout"}
    assert default["metrics"]["retain"]["items"] == 8 and default["metrics"]["retain"]["mia_auc_loss"] == 1.0
    assert len(ws.ledger.evaluations(version_id=target.id)) == len(rows)  # not stored
    ws.ledger.create_collection("test/empty", [])
    with pytest.raises(InputError, match="no documents to evaluate"):
        evaluate_version(ws, "target", forget="test/empty", config=CONFIG, store=False)
