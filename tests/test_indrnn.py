"""IndRNN: hand-written gradients against autograd, state carrying, the |u| bound."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rnncast.nn import indrnn
from rnncast.nn.indrnn import IndRNN, _IndRNNScan


def reference_forward(
    model: IndRNN, x: Tensor, state: tuple[Tensor, ...]
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The definition, step by step under plain autograd, with the model's own weights."""
    h = x  # (B, T, F)
    new_state = []
    for index, (layer, h_prev) in enumerate(zip(model.layers, state, strict=True)):
        pre = layer.linear(h)  # (B, T, D)
        outputs = []
        for t in range(pre.shape[1]):
            h_prev = torch.relu(pre[:, t] + layer.recurrent_weight * h_prev)
            outputs.append(h_prev)
        out = torch.stack(outputs, dim=1)  # (B, T, D)
        new_state.append(h_prev)
        h = out + h if model.residual and index > 0 else out
    return h, tuple(new_state)


def make_model(num_layers: int, residual: bool, seed: int = 0, **kwargs) -> IndRNN:
    torch.manual_seed(seed)
    model = IndRNN(3, 5, num_layers=num_layers, residual=residual, **kwargs).double()
    with torch.no_grad():
        for layer in model.layers:
            # Negative u and a non-zero bias too, so every branch of the backward is used.
            layer.recurrent_weight.uniform_(-1.0, 1.0)
            layer.linear.bias.normal_()
    return model


@pytest.fixture(params=["loop", "parallel scan"])
def recurrence(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways the layer walks time, whatever device the test runs on."""
    parallel = request.param == "parallel scan"
    monkeypatch.setattr(indrnn, "parallel_scan", lambda device: parallel)
    return parallel


@pytest.mark.parametrize("steps", [1, 2, 7, 12])
def test_gradcheck_of_the_scan(steps: int, recurrence: bool) -> None:
    generator = torch.Generator().manual_seed(steps)
    options = {"dtype": torch.float64, "requires_grad": True}
    pre = torch.randn(steps, 3, 4, generator=generator, **options)
    u = (torch.rand(4, generator=generator, dtype=torch.float64) * 2 - 1).requires_grad_()
    h0 = torch.rand(3, 4, generator=generator, **options)

    # clone: the Function overwrites its first argument, which gradcheck must keep intact.
    def scan(pre: Tensor, u: Tensor, h0: Tensor) -> Tensor:
        return _IndRNNScan.apply(pre.clone(), u, h0, recurrence)

    assert torch.autograd.gradcheck(scan, (pre, u, h0))


def test_gradcheck_of_the_module() -> None:
    model = make_model(num_layers=2, residual=True)
    x = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.rand(2, 5, dtype=torch.float64, requires_grad=True)
    h1 = torch.rand(2, 5, dtype=torch.float64, requires_grad=True)

    def run(x: Tensor, h0: Tensor, h1: Tensor) -> tuple[Tensor, ...]:
        y, state = model(x, (h0, h1))
        return (y, *state)

    assert torch.autograd.gradcheck(run, (x, h0, h1))


@pytest.mark.parametrize(
    ("num_layers", "residual", "steps"),
    [(1, False, 1), (1, False, 9), (3, False, 9), (3, True, 9), (2, True, 1), (1, False, 40)],
)
def test_gradients_equal_the_reference(
    num_layers: int, residual: bool, steps: int, recurrence: bool
) -> None:
    model = make_model(num_layers, residual)
    x = torch.randn(4, steps, 3, dtype=torch.float64, requires_grad=True)
    state = tuple(
        torch.rand(4, 5, dtype=torch.float64, requires_grad=True) for _ in range(num_layers)
    )
    weights = torch.randn(4, steps, 5, dtype=torch.float64)
    state_weights = [torch.randn(4, 5, dtype=torch.float64) for _ in range(num_layers)]
    inputs = [x, *state, *model.parameters()]

    def loss(y: Tensor, new_state: tuple[Tensor, ...]) -> Tensor:
        total = (y * weights).sum()
        return total + sum((h * w).sum() for h, w in zip(new_state, state_weights, strict=True))

    y, new_state = model(x, state)
    y_ref, state_ref = reference_forward(model, x, state)
    torch.testing.assert_close(y, y_ref)
    for h, h_ref in zip(new_state, state_ref, strict=True):
        torch.testing.assert_close(h, h_ref)
    grads = torch.autograd.grad(loss(y, new_state), inputs)
    grads_ref = torch.autograd.grad(loss(y_ref, state_ref), inputs)
    names = ["x"] + [f"state[{i}]" for i in range(num_layers)]
    names += [name for name, _ in model.named_parameters()]
    for name, grad, grad_ref in zip(names, grads, grads_ref, strict=True):
        assert grad.abs().sum() > 0 or grad_ref.abs().sum() == 0, name
        torch.testing.assert_close(grad, grad_ref, msg=lambda m, n=name: f"{n}: {m}")


def test_chunked_forward_with_carried_state_equals_one_pass() -> None:
    model = make_model(num_layers=3, residual=True, dropout=0.3).eval()
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    y_full, state_full = model(x)
    outputs, state = [], None
    for chunk in x.split([5, 1, 4, 2], dim=1):
        y, state = model(chunk, state)
        outputs.append(y)
    torch.testing.assert_close(torch.cat(outputs, dim=1), y_full)
    for h, h_full in zip(state, state_full, strict=True):
        torch.testing.assert_close(h, h_full)


def test_init_is_within_the_bound_and_uniform() -> None:
    torch.manual_seed(0)
    model = IndRNN(4, 512, num_layers=2, max_steps=10)
    bound = model.recurrent_bound
    assert bound == pytest.approx(2 ** (1 / 10))
    for layer in model.layers:
        u = layer.recurrent_weight
        assert u.min() >= 0.0 and u.max() <= bound
        assert u.max() > 0.98 * bound and u.min() < 0.02 * bound  # spread over (0, bound)
        assert torch.all(layer.linear.bias == 0)


def test_clip_keeps_u_within_the_bound() -> None:
    model = IndRNN(4, 6, num_layers=2, max_steps=50)
    bound = model.recurrent_bound
    values = torch.tensor([3.0, -3.0, 0.5, -0.5, bound, -1.1 * bound])
    for layer in model.layers:
        layer.recurrent_weight.data.copy_(values)
    model.clip_recurrent_weights_()
    expected = torch.tensor([bound, -bound, 0.5, -0.5, bound, -bound])
    for layer in model.layers:
        assert layer.recurrent_weight.abs().max() <= bound
        torch.testing.assert_close(layer.recurrent_weight.data, expected)
        assert layer.recurrent_weight.grad is None


def test_shapes_and_state_is_a_copy() -> None:
    model = IndRNN(3, 7, num_layers=2)
    y, state = model(torch.randn(4, 11, 3))
    assert y.shape == (4, 11, 7)
    assert len(state) == 2 and all(h.shape == (4, 7) for h in state)
    # The last layer is not residual here, so its state is its last output step.
    torch.testing.assert_close(state[-1], y[:, -1])
    assert state[-1].untyped_storage().data_ptr() != y.untyped_storage().data_ptr()


def test_dropout_only_in_training_mode() -> None:
    model = make_model(num_layers=3, residual=False, dropout=0.5)
    x = torch.randn(8, 10, 3, dtype=torch.float64)
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])
    model.eval()
    torch.testing.assert_close(model(x)[0], model(x)[0], rtol=0, atol=0)
    # One layer: nothing lies between layers, so training mode changes nothing.
    single = make_model(num_layers=1, residual=False, dropout=0.5).train()
    torch.testing.assert_close(single(x)[0], single(x)[0], rtol=0, atol=0)


def test_state_none_equals_zero_state() -> None:
    model = make_model(num_layers=2, residual=True)
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    zeros = tuple(torch.zeros(3, 5, dtype=torch.float64) for _ in range(2))
    y_none, state_none = model(x)
    y_zeros, state_zeros = model(x, zeros)
    torch.testing.assert_close(y_none, y_zeros, rtol=0, atol=0)
    for h_none, h_zeros in zip(state_none, state_zeros, strict=True):
        torch.testing.assert_close(h_none, h_zeros, rtol=0, atol=0)
    # A non-zero state does change the output, so the comparison above means something.
    ones = tuple(torch.ones(3, 5, dtype=torch.float64) for _ in range(2))
    assert not torch.allclose(model(x, ones)[0], y_none)


def test_wrong_state_and_arguments_are_rejected() -> None:
    model = IndRNN(3, 5, num_layers=2)
    x = torch.randn(4, 6, 3)
    with pytest.raises(ValueError, match=r"state must be 2 tensors of shape \(4, 5\)"):
        model(x, (torch.zeros(4, 5),))
    with pytest.raises(ValueError, match=r"got \[\(4, 5\), \(3, 5\)\]"):
        model(x, (torch.zeros(4, 5), torch.zeros(3, 5)))
    with pytest.raises(ValueError, match="dropout must be in"):
        IndRNN(3, 5, dropout=1.0)
    with pytest.raises(ValueError, match="max_steps must be >= 1, got 0"):
        IndRNN(3, 5, max_steps=0)


def test_autocast_bfloat16_on_cpu() -> None:
    model = IndRNN(3, 8, num_layers=2, residual=True)
    x = torch.randn(4, 6, 3)
    y_float, _ = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = model(x)
    assert y.dtype == torch.bfloat16 and state[0].dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), y_float, rtol=0.05, atol=0.05)
    y.float().sum().backward()
    u_grad = model.layers[0].recurrent_weight.grad
    assert u_grad is not None and u_grad.dtype == torch.float32
    assert torch.isfinite(u_grad).all() and u_grad.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_runs_under_autocast() -> None:
    # CUDA walks time in parallel scans, the CPU in a loop: both give the same values
    # and gradients.
    model = make_model(num_layers=2, residual=True).float()
    x = torch.randn(4, 130, 3)
    y_cpu, _ = model(x)
    y_cpu.sum().backward()
    cpu_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model_cuda = model.cuda()
    y_cuda, _ = model_cuda(x.cuda())
    y_cuda.sum().backward()
    torch.testing.assert_close(y_cuda.cpu(), y_cpu.detach(), rtol=1e-4, atol=1e-5)
    for grad, cpu_grad in zip((p.grad for p in model_cuda.parameters()), cpu_grads, strict=True):
        torch.testing.assert_close(grad.cpu(), cpu_grad, rtol=1e-3, atol=1e-4)
    model_cuda.zero_grad()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y, _ = model_cuda(x.cuda())
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16
    assert model_cuda.layers[0].recurrent_weight.grad.dtype == torch.float32


def test_the_parallel_scan_equals_the_loop_with_units_that_change_sign_or_stay_flat() -> None:
    # u < 0 flips the clamp's interval and u = 0 makes a flat map; a long chunk makes
    # the scan take rounds whose offset passes the start.
    generator = torch.Generator().manual_seed(3)
    pre = torch.randn(97, 6, 5, generator=generator, dtype=torch.float64)
    u = torch.tensor([-1.01, -0.3, 0.0, 0.5, 1.01], dtype=torch.float64)
    h0 = torch.rand(6, 5, generator=generator, dtype=torch.float64)
    looped = _IndRNNScan.apply(pre.clone(), u, h0, False)
    scanned = _IndRNNScan.apply(pre.clone(), u, h0, True)
    torch.testing.assert_close(scanned, looped, rtol=1e-12, atol=1e-12)
    assert (looped == 0).any() and (looped > 0).any(), "both sides of the ReLU are walked"


def test_only_the_cpu_walks_time_in_a_loop() -> None:
    assert not indrnn.parallel_scan(torch.device("cpu"))
    assert indrnn.parallel_scan(torch.device("cuda", 0))
    assert indrnn.parallel_scan(torch.device("mps"))
