"""The robustness probes: each attack does what it says, and its metrics respond to it."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from typer.testing import CliRunner

from lethe.data.synth import generate_world
from lethe.errors import InputError
from lethe.eval.robustness import ProbeConfig, ProbeContext, evaluation_rows, get_probe, list_probes, run_robustness
from lethe.eval.robustness.measure import forget_questions, metrics_of_questions
from lethe.eval.robustness.quantisation import dequantised_weight, quantise
from lethe.eval.robustness.relearning import attack_split
from lethe.model.io import load_version


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """A nano model that has memorised a 6-entity world's QA (30 epochs, one slice), with one
    trained entity's documents as the forget set and the rest of its training as retain."""
    from lethe.data.synth_ingest import ingest_synthetic_world
    from lethe.train.pipeline import train
    from lethe.workspace import Workspace

    ws = Workspace(home=tmp_path_factory.mktemp("robust")).init()
    world, _ = ingest_synthetic_world(ws.ledger, entities=6, seed=11, holdout_fraction=0.2)
    (version,) = train(
        ws, data="synth/qa", preset_or_path="nano", slices=1, epochs=30, batch_size=16, seq_len=96, lr=3e-3, seed=0
    )
    model, tokenizer = load_version(ws.home / version.path)
    entity = next(e for e in world.entities if e.group == "train" and e.kind == "person")
    forget_ids = set(ws.ledger.collection_ids(f"synth/entity/{entity.id}"))
    forget = [d for d in ws.ledger.documents(sorted(forget_ids)) if d.kind == "qa"]
    retain = ws.ledger.documents([d for d in ws.ledger.documents_seen(version.id) if d not in forget_ids])
    return model, tokenizer, forget, retain, entity


def context(memorised, **config):
    _, tokenizer, forget, retain, _ = memorised
    return ProbeContext(tokenizer, forget, retain, config=ProbeConfig(**config))


def test_probes_are_registered_and_configs_are_checked():
    assert set(list_probes()) == {"relearning", "quantisation", "paraphrase", "indirect", "extraction"}
    with pytest.raises(InputError, match="unknown robustness probe 'quantization'"):
        ProbeConfig(probes=("quantization",))
    with pytest.raises(InputError, match="quant_bits"):
        ProbeConfig(quant_bits=(3,))


def test_quantising_changes_the_weights_and_the_forget_metrics_are_measured(memorised):
    model, *_ = memorised
    original = {name: p.detach().clone() for name, p in model.named_parameters()}
    for bits in (8, 4):
        quantised = quantise(model, bits)
        layer = quantised.model.layers[0].mlp.down_proj
        assert type(layer).__name__ == ("Linear8bitLt" if bits == 8 else "Linear4bit")
        weight = original["model.layers.0.mlp.down_proj.weight"]
        rounded = dequantised_weight(layer)
        error = (rounded - weight).abs()
        assert error.max() > 0  # the weights really moved to a coarser grid ...
        assert error.mean() < 0.1 * weight.abs().mean() * (4 if bits == 4 else 1)  # ... close to the original
        grid = rounded.flatten()[:64] if bits == 4 else rounded[0]  # an NF4 block of 64; an int8 row
        assert len(torch.unique(grid)) <= 2**bits - (bits == 8)
    for name, parameter in model.named_parameters():  # the model attacked is untouched
        assert torch.equal(parameter, original[name])
    result = get_probe("quantisation")().run(model, context(memorised))
    assert set(result) == {"int8", "int4"}
    for metrics in result.values():
        assert metrics["items"] == len(memorised[2]) and 0.0 <= metrics["token_accuracy"] <= 1.0


def test_relearning_on_the_forget_set_brings_an_unlearned_model_back(memorised):
    from lethe.unlearn import UnlearnConfig, run_unlearning

    model, tokenizer, forget, _, _ = memorised
    probe_context = context(memorised, relearn_steps=(50,), relearn_lr=1e-3, probes=("relearning",))
    unlearned = run_unlearning(
        "grad_ascent",
        copy.deepcopy(model),
        tokenizer,
        probe_context.examples(forget),
        [],
        UnlearnConfig(steps=15, lr=1e-3, eval_every=0),
    ).model
    attacker, rest = attack_split(forget, 0.1, 0)
    assert attacker and rest and not {d.id for d in attacker} & {d.id for d in rest}
    rest_questions = forget_questions(rest, probe_context.config)
    known = metrics_of_questions(model, tokenizer, rest_questions, probe_context.config)["token_accuracy"]
    forgotten = metrics_of_questions(unlearned, tokenizer, rest_questions, probe_context.config)["token_accuracy"]
    assert forgotten < known - 0.3
    result = get_probe("relearning")().run(unlearned, probe_context)
    assert set(result) == {"retain_k50", "forget_k50"}
    assert result["forget_k50"]["items"] == len(rest)
    assert result["forget_k50"]["token_accuracy"] > forgotten + 0.1  # the facts it never relearned came back


def test_paraphrases_and_indirect_questions_use_words_training_never_used():
    world = generate_world(40, 0)
    qa = [d for d in world.documents if d["kind"] == "qa"]
    trained_questions = {d["data"]["question"] for d in qa}
    names = {e.id: e.name for e in world.entities}
    assert all(len(d["data"]["paraphrased_questions"]) == 2 for d in qa)
    assert not trained_questions & {q for d in qa for q in d["data"]["paraphrased_questions"]}
    hops = [(d, hop) for d in qa for hop in d["data"]["indirect_questions"]]
    assert len(hops) > len(qa)  # most facts are reachable through a relation
    for document, hop in hops:
        assert names[document["entity"]] not in hop["question"]  # the entity is described, not named
        assert names[hop["via"]] in hop["question"] and document["data"]["short_answer"] in hop["answer"]
    assert generate_world(40, 0).documents == world.documents  # seeded


def test_paraphrase_and_indirect_probes_score_the_new_questions(memorised):
    model, *_ = memorised
    rephrased = get_probe("paraphrase")().run(model, context(memorised))["rephrased"]
    assert rephrased["items"] == 2 * len(memorised[2])
    assert rephrased["token_accuracy"] > 0.5  # a memorised model still knows the answers
    multi_hop = get_probe("indirect")().run(model, context(memorised))["multi_hop"]
    assert multi_hop["items"] >= 1 and 0.0 <= multi_hop["answer_recall"] <= 1.0


def test_extraction_finds_memorised_answers_and_not_in_an_untrained_model(memorised):
    from transformers import LlamaForCausalLM

    model, *_ = memorised
    probe = get_probe("extraction")()
    probe_context = context(memorised, samples=4)
    (variant,) = probe.run(model, probe_context).values()
    torch.manual_seed(0)
    untrained = LlamaForCausalLM(model.config).eval()
    (baseline,) = probe.run(untrained, probe_context).values()
    assert variant["extraction_rate"] > 0.2 and variant["extraction_any"] > 0.5
    assert baseline["extraction_rate"] == 0.0 and variant["ngram_recall"] > baseline["ngram_recall"]


def test_every_model_meets_the_same_attack_and_rows_are_per_model(memorised):
    model, *_ = memorised
    result = run_robustness(
        {"after": model, "before": copy.deepcopy(model)}, context(memorised, probes=("quantisation", "paraphrase"))
    )
    assert result["probes"]["quantisation"]["int4"]["after"] == result["probes"]["quantisation"]["int4"]["before"]
    rows = evaluation_rows(result, "after")
    assert set(rows) == {"quantisation/int8", "quantisation/int4", "paraphrase/rephrased"}
    json.dumps(result)


def test_lethe_audit_runs_the_suite_and_stores_rows(trained_workspace):
    from lethe.cli import app

    ws, world, _ = trained_workspace
    entity = next(e for e in world.entities if any(d["group"] == "train" for d in world.documents_of(e.id)))
    runner = CliRunner()
    out = runner.invoke(
        app,
        ["forget", "--collection", f"synth/entity/{entity.id}", "--method", "grad_ascent", "--steps", "3"]
        + ["-p", "eval_every=0", "--no-publish", "--json"],
    )
    request_id = json.loads(out.stdout)["request_id"]
    quick = runner.invoke(app, ["audit", str(request_id), "--no-robustness", "--json"])
    assert quick.exit_code == 0 and "robustness" not in json.loads(quick.stdout)
    full = runner.invoke(app, ["audit", str(request_id), "--json"])
    assert full.exit_code == 0, full.output
    audit = json.loads(full.stdout)
    assert set(audit["robustness"]["probes"]) == set(list_probes())
    assert audit["robustness"]["roles"] == {"after": "candidate", "before": "target"}
    request = ws.ledger.forget_request(request_id)
    assert request.audit["robustness"] == audit["robustness"]  # stored with the request
    rows = ws.ledger.evaluations(benchmark="robustness", request_id=request_id)
    by_version = {}
    for row in rows:
        by_version.setdefault(row.version_id, set()).add(row.split)
    assert set(by_version) == {request.base_version_id, request.result_version_id}
    assert by_version[request.result_version_id] >= {
        "quantisation/int4",
        "relearning/forget_k10",
        "paraphrase/rephrased",
    }
    rendered = runner.invoke(app, ["audit", str(request_id)])
    assert "robustness" in rendered.stdout and "quantisation" in rendered.stdout
    from lethe.report.html import render_report

    html = render_report(ws)
    assert f"request {request_id}: robustness" in html and "robustness: candidate vs exact vs target" in html


def test_relearning_attacks_a_model_whose_weights_were_frozen_for_scoring(memorised):
    from lethe.eval.robustness.relearning import relearn
    from lethe.forget.strategies.approximate import training_examples
    from lethe.train.config import TrainConfig

    model, tokenizer, forget, _, _ = memorised
    frozen = copy.deepcopy(model).requires_grad_(False)  # as a real base is loaded for scoring
    examples = training_examples(forget, tokenizer, TrainConfig(task="sft", seq_len=96))
    attacked = relearn(frozen, tokenizer, examples, 2, context(memorised, relearn_lr=1e-3))
    assert not any(p.requires_grad for p in frozen.parameters())  # the attack trains a copy
    changed = [not torch.equal(a, b) for a, b in zip(attacked.parameters(), frozen.parameters(), strict=True)]
    assert any(changed)
