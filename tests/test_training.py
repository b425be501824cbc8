"""The training lab's claims on the digits, at small fixed-seed configurations (issue 5's numbers)."""

from __future__ import annotations

import dataclasses

import pytest

from numstab.errors import InvalidArgumentError, UnknownNameError
from numstab.lab import _batched, _digits, training
from numstab.lab.training import Setup

TANH_XAVIER = Setup("tanh", "xavier_normal")
RELU_KAIMING = Setup("relu", "kaiming_normal")
SIGMOID_SMALL = Setup("sigmoid", "normal", 0.01)
RELU_LARGE = Setup("relu", "normal", 0.4)


@pytest.fixture(scope="module")
def depth10() -> training.DepthSweep:
    """The chapter's four setups at depth 10: width 64, 400 SGD steps of 64 examples, lr 0.05, seed 0."""
    return training.depth_sweep([10], [TANH_XAVIER, RELU_KAIMING, SIGMOID_SMALL, RELU_LARGE], seeds=[0])


def test_xavier_and_kaiming_train_a_depth_10_net_to_90_percent(depth10: training.DepthSweep) -> None:
    assert depth10.accuracy(TANH_XAVIER.label, 10) >= 0.90
    assert depth10.accuracy(RELU_KAIMING.label, 10) >= 0.90


def test_sigmoid_with_n_0_001_stays_near_chance_at_depth_10(depth10: training.DepthSweep) -> None:
    (run,) = training.select(depth10.runs, label=SIGMOID_SMALL.label)
    assert run.test_accuracy <= 0.20 and run.failure_step is None
    # why: the bottom layer receives (almost) no gradient and does not move
    assert run.grad_norms[0][0] < 1e-12 * run.grad_norms[0][-1]
    assert run.weight_change[0] < 1e-6


def test_relu_with_a_large_scale_diverges_and_reports_its_failure_step(depth10: training.DepthSweep) -> None:
    (run,) = training.select(depth10.runs, label=RELU_LARGE.label)
    # which step: test_training_engine.py replays this very model (same init, batches and rate) with
    # nn.Sequential + torch.optim.SGD and finds the same first non-finite step
    assert run.diverged and run.failure_step > 0  # finite at initialization: training made it overflow
    assert run.failure_step < 400 and not run.trained
    assert run.losses[0] == run.losses[0] and run.losses[0] > 10  # step 0's loss: finite, but huge


def test_residual_connections_train_where_the_plain_net_does_not() -> None:
    res = training.remedies(["residual"], depth=20, steps=300, seeds=[0])
    assert res.accuracy("none") <= 0.20
    assert res.accuracy("residual") >= 0.80
    assert res.effect("residual") >= 0.6
    assert res.bottom_change("residual") > 1e4 * res.bottom_change("none")


def test_clipping_layernorm_and_critical_init_tame_an_exploding_relu_net() -> None:
    res = training.remedies(
        ["clip", "layernorm", "critical"], base=RELU_LARGE, depth=10, steps=150, seeds=[0]
    )
    (plain,) = training.select(res.runs, remedy="none")
    assert plain.diverged
    for name in ("clip", "layernorm", "critical"):
        (run,) = training.select(res.runs, remedy=name)
        assert not run.diverged, name
        assert run.test_accuracy > 0.3, name


def test_trainability_map_trains_only_inside_6_xi_c() -> None:
    """Trained cells lie within 6 xi_c (tolerance 0: not one trained cell beyond the boundary).

    The grid spans both phases of tanh with sigma_b^2 = 0.05 (critical sigma_w = 1.327) and puts cells on
    both sides of the boundary, so the check can fail either way it is wrong.
    """
    m = training.trainability_map((2, 8, 24, 48), (0.5, 1.0, 1.25, 3.0, 4.0), steps=150, seeds=[0], lr=0.03)
    trained = [
        (d, s) for i, d in enumerate(m.depths) for j, s in enumerate(m.weight_stds) if m.trained()[i][j]
    ]
    beyond = [(d, s) for d in m.depths for j, s in enumerate(m.weight_stds) if d > m.boundary[j]]
    assert len(trained) >= 5 and len(beyond) >= 5
    assert m.outside_boundary(tolerance=0.0) == []
    # near criticality the deep nets train: xi_c is large there
    assert m.trained()[m.depths.index(24)][m.weight_stds.index(1.25)]
    assert m.boundary[m.weight_stds.index(1.25)] > 100


def test_lr_sweep_finds_the_window_and_records_failures() -> None:
    res = training.lr_sweep([0.01, 0.1, 30.0], [RELU_KAIMING], depth=4, steps=100, seeds=[0])
    assert res.window(RELU_KAIMING.label) == (0.01, 0.1)
    (blown,) = training.select(res.runs, lr=30.0)
    assert blown.diverged and blown.failure_step is not None
    assert all(r.failure_step is None for r in res.runs if r.lr < 1)


def test_same_seed_same_result_and_progress_reaches_total() -> None:
    calls: list[tuple[int, int]] = []
    a = training.depth_sweep(
        [2, 3], [TANH_XAVIER], steps=15, seeds=[1], progress=lambda d, t: calls.append((d, t))
    )
    b = training.depth_sweep([2, 3], [TANH_XAVIER], steps=15, seeds=[1])
    assert a.to_dict() == b.to_dict()
    assert calls[-1] == (30, 30) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_results_serialize_and_render() -> None:
    res = training.remedies(["residual"], depth=2, steps=5, seeds=[0])
    d = res.to_dict()
    assert d["remedies"] == ["none", "residual"] and set(d["effects"]) == {"none", "residual"}
    html = res._repr_html_()
    assert 'id="training-remedies"' in html and "<img" in html


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error before any training starts.


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started before the arguments were validated")

    monkeypatch.setattr(_batched, "train", refuse)
    monkeypatch.setattr(_digits, "load", refuse)


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (
            lambda: training.remedies(["residual", "dropout"]),
            UnknownNameError,
            ["remedy", "'dropout'", "residual"],
        ),
        (lambda: training.depth_sweep([10], [Setup("relu6", "xavier_normal")]), UnknownNameError, ["relu6"]),
        (
            lambda: training.trainability_map([2], [1.0], activation="nope"),
            UnknownNameError,
            ["nope", "tanh"],
        ),
        (lambda: training.depth_sweep([2, 0]), InvalidArgumentError, ["depth", ">= 1", "got 0"]),
        (lambda: training.remedies(depth=0), InvalidArgumentError, ["depth", "got 0"]),
        (lambda: training.lr_sweep([0.1, -1.0]), InvalidArgumentError, ["lr", "> 0", "-1.0"]),
        (lambda: training.depth_sweep(lr=0.0), InvalidArgumentError, ["lr", "> 0"]),
        (lambda: training.lr_sweep([]), InvalidArgumentError, ["lrs is empty", "e.g."]),
        (lambda: training.depth_sweep([]), InvalidArgumentError, ["depths is empty"]),
        (lambda: training.trainability_map([2], []), InvalidArgumentError, ["weight_stds is empty"]),
        (lambda: training.remedies([]), InvalidArgumentError, ["remedies is empty"]),
        (lambda: training.depth_sweep(seeds=[]), InvalidArgumentError, ["seeds is empty"]),
        (lambda: training.depth_sweep([2], [Setup("tanh", "he")]), UnknownNameError, ["init", "'he'"]),
    ],
)
def test_bad_input_is_refused_before_training(call, error, words) -> None:  # noqa: ANN001
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


def _run(accuracy: float, failure: int | None = None, change: float = 0.5, seed: int = 0) -> training.Run:
    return training.Run("s", "tanh", "xavier_normal", 1.0, 3, 0.1, seed, "none", accuracy, 0.3, failure,
                        (), (), (change, 0.1))


def test_outcome_of_runs_over_seeds() -> None:
    """A cell is "diverged" if any run became inf/NaN, "trainable" if all reached 0.5, else "untrainable"."""
    trained = training.outcome([_run(0.9, change=0.2), _run(0.7, change=0.4, seed=1)])
    assert trained == training.Outcome(accuracy=0.8, bottom_change=pytest.approx(0.3), first_failure=None,
                                       failed=0, runs=2, verdict="trainable")
    assert training.outcome([_run(0.9), _run(0.49)]).verdict == "untrainable"  # one seed below 0.5
    blown = training.outcome([_run(0.9, failure=12), _run(0.1, failure=5), _run(0.9)])
    assert (blown.verdict, blown.first_failure, blown.failed, blown.runs) == ("diverged", 5, 2, 3)


def test_trainability_map_agrees_where_nothing_deeper_than_six_xi_c_trained() -> None:
    m = training.TrainabilityMap(
        depths=(4, 16, 32), weight_stds=(0.5, 1.0, 4.0), activation="tanh", bias_std=0.2, seeds=(0,),
        steps=10, lr=0.1, accuracy=((0.9, 0.9, 0.1), (0.2, 0.9, 0.1), (0.1, 0.6, 0.1)),
        diverged=((0, 0, 0),) * 3, xi_c=(2.0, 10.0, 1.0),
    )
    assert m.boundary == (12.0, 60.0, 6.0)
    assert m.deepest_trained() == (4, 32, None)
    assert m.agrees() == (True, True, True)
    deeper = dataclasses.replace(m, xi_c=(0.5, 10.0, 1.0))  # 6 xi_c = 3 < the trained depth 4
    assert deeper.agrees() == (False, True, True)


def test_each_init_takes_its_own_number_by_name() -> None:
    """scale is the raw std (normal), gain the orthogonal gain, weight_std sigma_w: never one for another."""
    assert Setup("relu", "normal", 0.4).scale == 0.4 and Setup("relu", "normal", 0.4).gain is None
    assert Setup("tanh", "orthogonal", gain=2.0).label == "tanh, orthogonal×2"
    assert Setup("tanh", "weight_std", weight_std=1.5).label == "tanh, σw=1.5"
    assert Setup("tanh", "orthogonal").gain == 1.0 and Setup("tanh", "xavier_normal").scale is None
    assert Setup("tanh", "orthogonal", gain=2.0).to_dict() == {  # only the number the init takes
        "activation": "tanh", "init": "orthogonal", "gain": 2.0, "bias_std": 0.0,
        "label": "tanh, orthogonal×2",
    }
    with pytest.raises(InvalidArgumentError, match="scale= does not apply to init 'orthogonal': it takes"):
        Setup("tanh", "orthogonal", 2.0)
    with pytest.raises(InvalidArgumentError, match="it takes no number"):
        Setup("tanh", "xavier_normal", weight_std=1.0)


def test_the_map_never_says_agrees_where_nothing_trained():
    # 6 xi_c = 6 and 60; column 0 trains at depth 4 only, column 1 nowhere, column 2 beyond 6 xi_c
    m = training.TrainabilityMap(
        depths=(4, 16), weight_stds=(0.5, 1.0, 2.0), activation="tanh", bias_std=0.0, seeds=(0,), steps=1,
        lr=0.1, accuracy=((0.9, 0.1, 0.9), (0.1, 0.1, 0.9)), diverged=((0, 0, 0), (0, 0, 0)),
        xi_c=(1.0, 10.0, 2.0),
    )
    assert m.agrees() == (True, True, False)  # the old test: an empty column passes vacuously
    assert m.verdicts() == ("agrees", "nothing trained", "disagrees")
    from numstab.render.training import table_rows

    assert [row[-1] for row in table_rows(m)[1]] == ["agrees", "nothing trained", "disagrees"]
