"""The forecaster network: shapes, ordered quantiles, state carrying, causality, anchoring."""

from __future__ import annotations

import pytest
import torch

from rnncast.config import ModelConfig
from rnncast.nn.data_linear import data_linear
from rnncast.nn.forecaster import CELLS, Forecaster, TorchRecurrent
from rnncast.nn.indrnn import IndRNN

BATCH, STEPS, FEATURES, FUTURE, SERIES = 3, 11, 4, 3, 5
HORIZON = 4
QUANTILES = (0.05, 0.3, 0.7, 0.95)  # the network adds the median: Q = 5
ALL_CELLS = ("lstm", "gru", "rnn", "indrnn")


def make_network(cell: str, seed: int = 0, **options) -> Forecaster:
    settings = {"horizon": HORIZON, "cell": cell, "hidden": 8, "layers": 1, "quantiles": QUANTILES}
    config = ModelConfig(**(settings | options))
    torch.manual_seed(seed)
    return Forecaster(config, FEATURES, FUTURE, SERIES, recurrent_steps=STEPS).eval()


def make_inputs(seed: int = 1, steps: int = STEPS, scale: float = 1.0):
    generator = torch.Generator().manual_seed(seed)
    inputs = scale * torch.randn(BATCH, steps, FEATURES, generator=generator)  # (B, T, F)
    future = scale * torch.randn(BATCH, steps, HORIZON, FUTURE, generator=generator)
    codes = torch.tensor([4, 0, 2])
    return inputs, future, codes


def assert_near(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    # Not torch.testing.assert_close: its first call alone takes over a second of imports.
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max().item() <= atol


def randomise_(network: Forecaster, seed: int, std: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(std * torch.randn(parameter.shape, generator=generator))


def test_cells_cover_the_configurable_choices() -> None:
    assert set(CELLS) == set(ALL_CELLS)
    assert isinstance(make_network("gru").encoder, TorchRecurrent)
    assert isinstance(make_network("indrnn").encoder, IndRNN)


def test_sizes_must_be_chosen_first() -> None:
    with pytest.raises(ValueError, match="sizes must be chosen"):
        Forecaster(ModelConfig(hidden=8), FEATURES, FUTURE, SERIES, STEPS)


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_forecasts_have_one_value_per_step_horizon_and_quantile(cell: str, layers: int) -> None:
    network = make_network(cell, layers=layers, id_embedding=2)
    inputs, future, codes = make_inputs()
    with torch.no_grad():
        forecasts, state = network(inputs, future, codes)
    assert network.quantiles == (0.05, 0.3, 0.5, 0.7, 0.95)
    assert forecasts.shape == (BATCH, STEPS, HORIZON, 5)
    assert torch.isfinite(forecasts).all()
    assert all(h.shape == (layers, BATCH, 8) or h.shape == (BATCH, 8) for h in state)
    assert len(state) == (2 if cell == "lstm" else layers if cell == "indrnn" else 1)


def test_point_loss_emits_the_median_alone() -> None:
    network = make_network("gru", loss="mse")
    inputs, future, codes = make_inputs()
    with torch.no_grad():
        forecasts, _ = network(inputs, future, codes)
    assert forecasts.shape == (BATCH, STEPS, HORIZON, 1)


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("seed", range(3))
def test_quantiles_never_cross(cell: str, seed: int) -> None:
    network = make_network(cell, seed=seed)
    # Large random weights and inputs push the raw outputs far to both sides.
    randomise_(network, seed, std=3.0)
    inputs, future, codes = make_inputs(seed, scale=10.0)
    with torch.no_grad():
        forecasts, _ = network(inputs, future, codes)
    assert torch.isfinite(forecasts).all()
    assert (forecasts.diff(dim=-1) >= 0).all()


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize(("layers", "id_embedding"), [(1, 0), (2, 3)])
def test_encoding_in_chunks_with_carried_state_equals_one_pass(
    cell: str, layers: int, id_embedding: int
) -> None:
    network = make_network(cell, layers=layers, id_embedding=id_embedding)
    inputs, _, codes = make_inputs(steps=17)
    with torch.no_grad():
        whole, whole_state = network.encode(inputs, codes)
        pieces, state = [], None
        for start, stop in [(0, 5), (5, 6), (6, 13), (13, 17)]:
            summaries, state = network.encode(inputs[:, start:stop], codes, state)
            pieces.append(summaries)
    assert_near(torch.cat(pieces, dim=1), whole, atol=1e-5)
    assert len(state) == len(whole_state)
    for carried, direct in zip(state, whole_state, strict=True):
        assert_near(carried, direct, atol=1e-5)


@pytest.mark.parametrize("picked", [slice(1, None, 3), slice(0, None, 2), slice(4, 5)])
def test_decoding_chosen_origins_equals_decoding_all_then_choosing(picked: slice) -> None:
    network = make_network("gru", id_embedding=2)
    inputs, future, codes = make_inputs()
    with torch.no_grad():
        every, every_state = network(inputs, future, codes)
        chosen, state = network(inputs, future[:, picked], codes, None, picked)
    assert_near(chosen, every[:, picked], atol=1e-6)
    assert chosen.shape[1] == len(range(STEPS)[picked])
    assert_near(state[0], every_state[0], atol=0.0)


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_output_at_a_step_never_depends_on_later_inputs(cell: str) -> None:
    network = make_network(cell, layers=2, id_embedding=2)
    inputs, future, codes = make_inputs()
    changed = inputs.clone()
    changed[:, 6] += 5.0
    with torch.no_grad():
        before, _ = network(inputs, future, codes)
        after, _ = network(changed, future, codes)
    assert torch.equal(before[:, :6], after[:, :6])
    # The change does reach the step it was made at, so the check above can fail.
    assert not torch.allclose(before[:, 6], after[:, 6])


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_bidirectional_summary_reads_the_whole_window_backwards(cell: str) -> None:
    network = make_network(cell, bidirectional=True)
    inputs, _, codes = make_inputs()
    changed = inputs.clone()
    changed[:, 0] += 5.0
    with torch.no_grad():
        before, _ = network.encode(inputs, codes)
        after, _ = network.encode(changed, codes)
    assert before.shape == (BATCH, STEPS, 16)
    # The backward half at the last step has read step 0 last.
    assert not torch.allclose(before[:, -1, 8:], after[:, -1, 8:])
    # That half is the same summary of the whole window at every step.
    assert torch.equal(before[:, :, 8:], before[:, -1:, 8:].expand(-1, STEPS, -1))
    # It is the backward encoder's last output over the reversed window, not the forward one.
    with torch.no_grad():
        reversed_read, _ = network.backward_encoder(inputs.flip(1))
        forward_read, _ = network.backward_encoder(inputs)
    assert_near(before[:, -1, 8:], reversed_read[:, -1], atol=1e-6)
    assert not torch.allclose(before[:, -1, 8:], forward_read[:, -1])


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_zero_output_layer_forecasts_the_season_input_as_median(cell: str) -> None:
    network = make_network(cell, season_inputs=True)
    with torch.no_grad():
        network.output_layer.weight.zero_()
        network.output_layer.bias.zero_()
        inputs, future, codes = make_inputs()
        forecasts, _ = network(inputs, future, codes)
    median = network.quantiles.index(0.5)
    assert torch.equal(forecasts[..., median], future[..., -1])
    # The other quantiles sit softplus(0) = log 2 per gap around it.
    gaps = torch.log(torch.tensor(2.0)) * torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    assert_near(forecasts, future[..., -1:] + gaps, atol=1e-6)


def test_without_season_inputs_the_median_is_not_anchored() -> None:
    network = make_network("gru", season_inputs=False)
    with torch.no_grad():
        network.output_layer.weight.zero_()
        network.output_layer.bias.zero_()
        forecasts, _ = network(*make_inputs())
    assert torch.equal(forecasts[..., 2], torch.zeros(BATCH, STEPS, HORIZON))


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_dropout_has_no_effect_in_eval_mode(cell: str) -> None:
    network = make_network(cell, layers=2, dropout=0.5)
    plain = make_network(cell, layers=2, dropout=0.0)
    plain.load_state_dict(network.state_dict())
    inputs, future, codes = make_inputs()
    with torch.no_grad():
        evaluated, _ = network.eval()(inputs, future, codes)
        reference, _ = plain.eval()(inputs, future, codes)
        torch.manual_seed(0)
        trained, _ = network.train()(inputs, future, codes)
    assert torch.equal(evaluated, reference)
    # In training mode dropout does change the output, so the check above can fail.
    assert not torch.allclose(trained, reference)


@pytest.mark.parametrize("widths", [(3, 7), (7, 3)])  # fewer inputs than outputs, and more
def test_data_linear_is_torchs_linear_with_the_same_weight_gradient(
    widths: tuple[int, int],
) -> None:
    inputs_width, outputs_width = widths
    generator = torch.Generator().manual_seed(5)
    inputs = torch.randn(4, 6, 5, inputs_width, generator=generator, dtype=torch.float64)
    weight = torch.randn(outputs_width, inputs_width, generator=generator, dtype=torch.float64)
    upstream = torch.randn(4, 6, 5, outputs_width, generator=generator, dtype=torch.float64)
    ours = weight.clone().requires_grad_(True)
    theirs = weight.clone().requires_grad_(True)
    out = data_linear(inputs, ours)
    expected = torch.nn.functional.linear(inputs, theirs)
    assert torch.equal(out, expected)
    (out * upstream).sum().backward()
    (expected * upstream).sum().backward()
    assert_near(ours.grad, theirs.grad, atol=1e-12)
    fresh = ours.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w: data_linear(inputs, w), (fresh,))


def test_data_linear_under_autocast_gives_the_weight_its_own_precision() -> None:
    generator = torch.Generator().manual_seed(6)
    inputs = torch.randn(64, 5, 3, generator=generator)
    weight = torch.randn(8, 3, generator=generator)
    ours = weight.clone().requires_grad_(True)
    theirs = weight.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = data_linear(inputs, ours)
        expected = torch.nn.functional.linear(inputs, theirs)
    assert out.dtype == expected.dtype == torch.bfloat16
    out.float().square().sum().backward()
    expected.float().square().sum().backward()
    assert ours.grad.dtype == torch.float32
    relative = (ours.grad - theirs.grad).abs().max() / theirs.grad.abs().max()
    assert relative.item() < 0.02  # bfloat16 keeps about 3 significant digits


def test_data_linear_still_gives_inputs_that_need_one_their_gradient() -> None:
    inputs = torch.randn(2, 3, requires_grad=True)
    weight = torch.randn(4, 3, requires_grad=True)
    data_linear(inputs, weight).sum().backward()
    assert inputs.grad is not None
    assert_near(inputs.grad, weight.sum(0).expand(2, 3), atol=1e-6)
    assert weight.grad is not None


def test_training_step_gradients_match_a_plain_linear_future_layer() -> None:
    network = make_network("lstm").train()
    inputs, future, codes = make_inputs()
    forecasts, _ = network(inputs, future, codes)
    forecasts.square().sum().backward()
    ours = network.future_layer.weight.grad.clone()
    network.zero_grad()
    summaries, _ = network.encode(inputs, codes)
    per_step = network.global_layer(summaries).view(BATCH, STEPS, HORIZON, network.step_size)
    hidden = torch.relu(per_step + network.future_layer(future))
    expected = network._ordered(network.output_layer(hidden)) + future[..., -1:]
    expected.square().sum().backward()
    assert_near(ours, network.future_layer.weight.grad, atol=1e-4)
