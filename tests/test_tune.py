"""`lethe tune` on a tiny world: the study is stored, resumable, and `--tuned` applies it."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from lethe.cli import app

runner = CliRunner()
FIXED = ["-p", "forget_batch_size=4", "-p", "eval_every=0"]


def invoke(*args, code=0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


def request_collection(ws) -> str:
    trained = set(ws.ledger.collection_ids("synth/qa"))
    names = sorted(c.name for c, _ in ws.ledger.collections() if c.name.startswith("synth/entity/"))
    names = [n for n in names if set(ws.ledger.collection_ids(n)) & trained]
    kinds = {n.rsplit("/", 1)[0] for n in names}
    kind = max(sorted(kinds), key=lambda k: sum(n.startswith(k + "/") for n in names))  # the kind with most
    return next(n for n in names if n.startswith(kind + "/"))


def test_tune_stores_resumes_and_forget_tuned_applies_the_best(trained_workspace, tmp_path):
    ws, _, _ = trained_workspace
    ledger = ws.ledger
    like = request_collection(ws)
    common = ["--like", like, "--calibration", "2", "--no-robustness", *FIXED, "--json"]
    first = json.loads(invoke("tune", "npo", "--trials", "2", *common))[0]
    assert [t["number"] for t in first["trials"]] == [0, 1]
    calibration = first["calibration"]
    assert like not in calibration["subjects"] and len(calibration["subjects"]) == 2
    request_ids = set(ledger.collection_ids(like))
    row = ledger.tuning_calibration_by_id(calibration["id"])
    assert not request_ids & set(row.document_ids)  # calibration is disjoint from the real request
    version_count = len(ledger.list_versions(include_discarded=True))

    # a second call resumes the same study: trial numbers continue, the exact replay is reused
    second = json.loads(invoke("tune", "npo", "--trials", "1", *common))[0]
    assert second["id"] == first["id"] and second["calibration"]["id"] == calibration["id"]
    assert [t["number"] for t in second["trials"]] == [0, 1, 2]
    assert second["trials"][:2] == first["trials"]
    assert len(ledger.list_versions(include_discarded=True)) == version_count
    best = second["best"]
    complete = [t for t in second["trials"] if t["state"] == "complete"]
    assert best["number"] in {t["number"] for t in complete}
    assert all(0 <= t["forget_quality"] <= 1 and t["utility_fraction"] > 0 for t in complete)
    listed = json.loads(invoke("tune", "ls", "--json"))
    assert [(s["name"], s["trials"]) for s in listed] == [(second["name"], 3)]
    shown = json.loads(invoke("tune", "show", str(second["id"]), "--json"))
    assert shown["best"] == best
    chart = tmp_path / "pareto.png"
    invoke("tune", "show", second["name"], "--plot", str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    from lethe.report.html import render_report

    assert "Tuning against the exact answer" in render_report(ws)  # the report's Pareto panel

    # --tuned: the request runs with the chosen trial's settings
    out = json.loads(invoke("forget", "--collection", like, "--method", "npo", "--tuned", "--no-publish", "--json"))
    request = ledger.forget_request(out["request_id"])
    for key, value in best["params"].items():
        assert request.config[key] == value
    assert request.config["forget_batch_size"] == 4  # the study's fixed settings come along
    # --method auto picks the tuned method (the only one)
    auto = invoke("forget", "--collection", like, "--method", "auto", "--dry-run")
    assert "method npo" in auto

    # two calibration draws, each with its own exact replay, pooled in every trial; the
    # untuned-like start is not enqueued here, so TPE draws
    pooled = json.loads(
        invoke(
            "tune",
            "simnpo",
            "--trials",
            "1",
            "--draws",
            "2",
            "--calibration",
            "1",
            "--objective",
            "worst",
            *common[:2],
            *common[4:],
        )
    )[0]
    draws = pooled["config"]["draws"]
    assert len(draws) == 2 and not set(draws[0]["subjects"]) & set(draws[1]["subjects"])
    assert like not in draws[0]["subjects"] + draws[1]["subjects"]
    assert pooled["config"]["objective"] == "worst"
    assert "+" in pooled["name"] and len(pooled["trials"]) == 1
    assert 0 <= pooled["trials"][0]["forget_quality"] <= 1

    # a trial that passes the time ceiling is stopped there: state "slow", no settings chosen
    slow = json.loads(invoke("tune", "grad_diff", "--trials", "1", "--time-fraction", "0.001", *common))[0]
    (trial,) = slow["trials"]
    assert trial["state"] == "slow" and trial["forget_quality"] is None and slow["best"] is None
    assert slow["config"]["time_fraction"] == 0.001
    assert trial["seconds"] < 0.25 * slow["calibration"]["exact_seconds"]


def test_tune_show_draws_the_pareto_front(tmp_path):
    from lethe.report.tuning import pareto_figure, pareto_front

    assert pareto_front([(0.5, 0.9), (0.9, 0.5), (0.8, 0.4), (1.0, 0.1)]) == [(0.5, 0.9), (0.9, 0.5), (1.0, 0.1)]
    trials = [
        {"number": i, "state": "complete", "forget_quality": q, "utility_fraction": u}
        for i, (u, q) in enumerate([(0.99, 0.2), (1.01, 0.05), (0.9, 0.8)])
    ]
    study = {"method": "npo", "trials": trials, "config": {"utility_fraction": 0.97}, "best": trials[0]}
    fig = pareto_figure([study])
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # the trials and the ring around the chosen one
    assert list(ax.collections[1].get_offsets()[0]) == [0.99, 0.2]
    assert np.allclose(sorted(ax.collections[0].get_offsets()[:, 1]), [0.05, 0.2, 0.8])
    # the legend sits beside the axes (over them it hid a study's only trial) and counts the rest
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    assert ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    slow = {
        **study,
        "trials": [*trials, {"number": 3, "state": "slow", "forget_quality": None, "utility_fraction": None}],
    }
    labels = [t.get_text() for t in pareto_figure([slow]).axes[0].get_legend().get_texts()]
    assert labels[0] == "npo (3 finished; 1 stopped at the time ceiling)"


def test_bad_tune_input_is_a_sentence_and_changes_nothing(trained_workspace):
    ws, _, _ = trained_workspace
    like = request_collection(ws)
    assert "exact answer itself" in invoke("tune", "exact", "--like", like, code=2)
    out = invoke("tune", "nosuch", "--like", like, code=2)
    assert "nosuch" in out
    out = invoke("tune", "npo", "--like", like, "--calibration", "0", code=2)
    assert "--calibration" in out
    out = invoke("tune", "npo", "--like", like, "-p", "betta=0.1", code=2)
    assert "betta" in out
    out = invoke("forget", "--collection", like, "--method", "npo", "--tuned", code=2)
    assert "no tune of npo" in out
    out = invoke("forget", "--collection", like, "--method", "auto", code=2)
    assert "no tuned method" in out
    assert ws.ledger.tuning_studies() == [] and ws.ledger.forget_requests() == []
    assert "Traceback" not in out


def test_goal_rows_judge_each_tuned_method_against_the_exact_model():
    from lethe.bench.tuning import goal_rows
    from lethe.forget.tuning import robustness_verdict

    verdict = robustness_verdict(
        {"relearning/k10": 0.30, "quantisation/4bit": 0.1}, {"relearning/k10": 0.2, "quantisation/4bit": 0.1}, 0.05
    )
    assert not verdict["within_exact_range"] and verdict["gap"]["relearning/k10"] == 0.1
    study = {
        "trials": [{"state": "complete"}, {"state": "pruned"}],
        "tuning_seconds": 90.0,
        "best": {"params": {"lr": 1e-3}},
    }
    result = {
        "rows": [
            {"model": "exact", "role": "reference", "model_utility": 0.5},
            {"model": "npo", "role": "method", "forget_quality": 0.1, "model_utility": 0.4},
            {
                "model": "npo+tuned",
                "role": "method",
                "forget_quality": 0.95,
                "model_utility": 0.49,
                "unlearn_seconds": 5.0,
            },
        ],
        "tuning": {"studies": {"npo": study}, "calibration": {"exact_seconds": 110.0}, "settings": {}},
        "robustness": {
            "probes": {
                "relearning": {"k10": {"exact": {"token_accuracy": 0.2}, "npo+tuned": {"token_accuracy": 0.22}}},
                "quantisation": {"4bit": {"exact": {"token_accuracy": 0.1}, "npo+tuned": {"token_accuracy": 0.3}}},
            }
        },
    }
    (row,) = goal_rows(result, exact_seconds=100.0, utility_key="model_utility")
    assert row["utility_fraction"] == 0.98 and row["time_fraction"] == 0.05
    assert row["amortised_after"] == 200.0 / 95.0  # (90 s of trials + 110 s of calibration) / 95 s saved
    assert row["pruned"] == 1 and row["checks"] == {
        "forget_quality": True,
        "utility": True,
        "time": True,
        "robustness": False,  # quantisation brings back 0.2 more than it does from the exact model
    }
    assert not row["goal_met"]


def test_calibration_draws_match_the_request_in_kind_and_size():
    import pytest

    from lethe.bench.tuning import choose_subjects
    from lethe.errors import InputError

    sizes = {"person/01": 12, "person/02": 19, "person/03": 11, "person/04": 18, "person/05": 15, "place/01": 10}
    sizes |= {"place/02": 13, "place/03": 12, "organisation/01": 11, "organisation/02": 12}
    candidates = {name: list(range(n)) for name, n in sizes.items()}
    request = {"person/90": list(range(18)), "place/90": list(range(12))}
    draws = choose_subjects(candidates, 2, seed=0, request=request, draws=2)
    assert draws == choose_subjects(candidates, 2, seed=0, request=request, draws=2)  # seeded
    assert len(draws) == 2 and not set(draws[0]) & set(draws[1])  # disjoint draws
    for draw in draws:  # one person and one place each, the nearest in size first
        assert sorted(name.split("/")[0] for name in draw) == ["person", "place"]
    assert {n for d in draws for n in d if n.startswith("person/")} == {"person/04", "person/02"}  # 18 and 19
    assert {n for d in draws for n in d if n.startswith("place/")} == {"place/03", "place/02"}  # 12 and 13
    # without a request: uniform and disjoint, as many as asked
    plain = choose_subjects(candidates, 3, seed=1, draws=2)
    assert [len(d) for d in plain] == [3, 3] and not set(plain[0]) & set(plain[1])
    with pytest.raises(InputError, match="organisation"):  # only two organisations to match three draws
        choose_subjects(candidates, 1, seed=0, request={"organisation/90": [1] * 11}, draws=3)


def test_draws_pool_the_truth_ratios_and_the_time_constraint_counts_one_draw(monkeypatch):
    import pytest

    from lethe.eval.tofu_math import forget_quality
    from lethe.forget import tuning
    from lethe.forget.tuning_space import start_point

    rng = np.random.default_rng(0)
    exact = [rng.uniform(0.3, 0.9, 30), rng.uniform(0.3, 0.9, 34)]
    candidate = [rng.uniform(0.2, 0.8, 30), rng.uniform(0.3, 0.9, 34)]
    blank = {"target_path": None, "exact_path": None, "eval_config": None, "examples_of": None}
    lists = {"forget_examples": [], "retain_examples": [], "forget_documents": [], "retain_documents": []}
    problems = [tuning.TuningProblem(exact_seconds=100.0 * (i + 1), **blank, **lists) for i in range(2)]
    references = [tuning.Reference(ratios, utility=0.5) for ratios in exact]
    seen = []

    def fake_trial(method, problem, reference, params, *, report=None, time_limit=None):
        i = problems.index(problem)
        seen.append((i, report is not None))
        if time_limit is not None and 10.0 + 10 * i > time_limit:
            raise tuning.Pruned({}, time_limit, "time")
        return tuning.TrialOutcome(
            forget_quality=forget_quality(candidate[i], reference.ratios),
            utility=0.5 - 0.1 * i,
            utility_fraction=1.0 - 0.2 * i,
            seconds=10.0 + 10 * i,
            model=f"model {i}",
            ratios=candidate[i],
        )

    monkeypatch.setattr(tuning, "run_trial", fake_trial)
    outcome = tuning.run_draws("npo", problems, references, {"lr": 1e-3}, report=lambda step, q: False)
    assert seen == [(0, True), (1, False)]  # the pruner looks at the first draw only
    pooled = forget_quality(np.concatenate(candidate), np.concatenate(exact))
    assert outcome.forget_quality == pooled
    assert pooled not in {forget_quality(c, e) for c, e in zip(candidate, exact, strict=True)}  # not one draw's
    assert outcome.utility_fraction == pytest.approx(0.9) and outcome.model == "model 0"
    assert outcome.seconds == 30.0 and outcome.request_seconds == 15.0
    each = [forget_quality(c, e) for c, e in zip(candidate, exact, strict=True)]
    worst = tuning.run_draws("npo", problems, references, {}, objective="worst")
    assert worst.forget_quality == min(each)
    assert tuning.run_draws("npo", problems, references, {}, objective="mean").forget_quality == pytest.approx(
        sum(each) / 2
    )
    with pytest.raises(tuning.InputError, match="objective"):
        tuning.TuneSettings(objective="median")
    settings = tuning.TuneSettings(time_fraction=0.1)
    assert tuning.time_gap(15.0, problems, settings) == 0.0  # 15 s of a mean 150 s replay: just feasible
    assert tuning.time_gap(16.0, problems, settings) > 0
    assert tuning.time_gap(16.0, problems, tuning.TuneSettings()) is None
    assert (
        tuning.time_ceiling(problems, settings) == 15.0 and tuning.time_ceiling(problems, tuning.TuneSettings()) is None
    )
    with pytest.raises(tuning.Pruned) as stopped:  # the second draw passes the ceiling: the trial stops there
        tuning.run_draws("npo", problems, references, {}, time_limit=15.0)
    assert stopped.value.reason == "time" and stopped.value.seconds == 25.0  # the first draw's 10 s + 15 s
    assert start_point({"lr": 5e-4, "epochs": 5, "retain_batch_size": 8, "seed": 0}) == {
        "lr": 5e-4,
        "epochs": 5,
        "retain_batch_size": 8,
        "sam_rho": 0.0,
    }
    assert start_point({"lr": 1.0, "epochs": 50}) == {"sam_rho": 0.0}  # outside the space: TPE draws them


def test_a_space_signature_names_every_searched_parameter_and_changes_with_the_space():
    from lethe.forget.tuning_space import space_signature

    names = [asked[1] for asked in space_signature("whp")]
    assert names == ["lr", "epochs", "retain_batch_size", "sam_rho", "alpha", "whp_variants", "whp_boost"]
    assert "lora_r" in [asked[1] for asked in space_signature("npo", {"lora": True})]
    assert space_signature("npo") != space_signature("simnpo")


def test_every_space_searches_the_sam_radius_with_plain_steps_among_the_choices():
    from lethe.forget.tuning_space import SPACES, space_signature, start_point
    from lethe.unlearn import UnlearnConfig

    for method in SPACES.names():
        (sam,) = [asked for asked in space_signature(method) if asked[1] == "sam_rho"]
        assert sam[0] == "categorical" and 0.0 in sam[2] and max(sam[2]) > 0, method
        for rho in sam[2]:
            UnlearnConfig.from_dict({"sam_rho": rho})  # every choice is a valid setting
    # the untuned start is plain steps unless the untuned run used SAM itself
    assert start_point({"lr": 5e-4, "epochs": 5})["sam_rho"] == 0.0
    assert start_point({"lr": 5e-4, "sam_rho": 0.05})["sam_rho"] == 0.05
    assert "sam_rho" not in start_point({"sam_rho": 0.07})  # outside the choices: left to the sampler


def test_a_warm_start_takes_the_best_settings_other_studies_found_on_the_same_calibration():
    from types import SimpleNamespace as Row

    from lethe.forget.tuning import TuneSettings, warm_start

    names = ["lr", "epochs"]

    def trial(number, quality, utility, state="complete", **params):
        return Row(number=number, state=state, forget_quality=quality, utility_fraction=utility, params=params)

    trials = {
        1: [
            trial(0, 0.8, 0.99, lr=1e-3, epochs=4),
            trial(1, 0.95, 0.5, lr=3e-3, epochs=9),  # forgot by breaking the model: below the floor
            trial(2, None, None, "slow", lr=1e-4, epochs=9),
            trial(3, 0.2, 0.98, lr=2e-4, epochs=3),
        ],
        2: [trial(0, 0.9, 0.97, lr=5e-4, epochs=5, beta=0.1)],  # another space's parameters
        3: [trial(0, 0.99, 0.99, lr=1e-3, epochs=2)],  # another calibration
        4: [trial(0, 0.7, 0.99, lr=4e-4, epochs=5)],  # this study itself
    }
    studies = [Row(id=1, name="old", calibration_id=7), Row(id=2, name="wider", calibration_id=7)]
    studies += [Row(id=3, name="elsewhere", calibration_id=8), Row(id=4, name="this", calibration_id=7)]
    ledger = Row(tuning_studies=lambda method: studies, tuning_trials=lambda study_id: trials[study_id])
    warm = warm_start(ledger, "npo", 7, "this", names, TuneSettings())
    assert warm == [{"lr": 1e-3, "epochs": 4}, {"lr": 2e-4, "epochs": 3}]
    assert warm_start(ledger, "npo", 7, "this", names, TuneSettings(), top=1) == warm[:1]


def test_only_the_first_draws_exact_model_is_attacked(monkeypatch):
    from lethe.forget import tuning

    asked = []
    monkeypatch.setattr(tuning, "exact_reference", lambda problem, settings, *, probes: asked.append(probes))
    tuning.exact_references(["draw 1", "draw 2", "draw 3"], tuning.TuneSettings())
    assert asked == [True, False, False]  # `choose` attacks the finalists on the first draw only


def test_a_bench_without_robustness_tunes_without_attacks():
    from lethe.bench.synth import SynthBenchConfig
    from lethe.bench.tofu import TofuBenchConfig
    from lethe.bench.tuning import tune_settings

    assert tune_settings(TofuBenchConfig(data="tofu")).robustness
    assert not tune_settings(TofuBenchConfig(data="tofu", robustness=False)).robustness
    assert not tune_settings(SynthBenchConfig(robustness=False)).robustness
