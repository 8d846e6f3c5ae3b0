"""Wan2.1's flow-matching UniPC scheduler: every step against a plain float64 statement of the UniPC (bh2)
update equations on a closed-form Gaussian flow, the official int64 timesteps, convergence on the exact flow,
and a tiny Wan pipeline run through it against the plain solver driven by the same transformer."""

import math

import numpy as np
import pytest
import torch
from flow_reference import MEAN, STD, gaussian_denoiser, gaussian_velocity, phi, run_recording, torch_velocity

from omiti2v.schedulers import WanFlowUniPCScheduler


def official_grid(steps: int, shift: float = 3.0) -> tuple[list[float], list[int]]:
    """The official sampling grid, restated: sigma_max is 1 - 1/1000 stored in float32, `steps` points
    linspace(sigma_max, 0) without the 0, shifted, timesteps = sigma * 1000 truncated, sigmas kept in float32."""
    sigma_max = float(np.float32(1.0 - 1.0 / 1000))
    grid = np.linspace(sigma_max, 0.0, steps + 1)[:-1]
    shifted = shift * grid / (1 + (shift - 1) * grid)
    return [float(np.float32(s)) for s in shifted] + [0.0], [int(t) for t in shifted * 1000]


def plain_unipc_bh2(velocity, noise, sigmas, max_order=2):
    """UniPC in data prediction with lambda = log((1 - sigma) / sigma) and B(h) = e^-h - 1, written from the
    equations; returns the point handed back after every model call. An update of order p from sigma_a to
    sigma_b (h = lambda_b - lambda_a) with m_0 the x0 at sigma_a and m_k the older ones:
      r_k = (lambda_{a-k} - lambda_a) / h,  D_k = (m_k - m_0) / r_k,  b_j = j! (-h) phi_{j+1}(-h) / B(h),
      R[j][k] = r_k^j (r_p = 1),  base = (sigma_b / sigma_a) x - (1 - sigma_b)(e^-h - 1) m_0,
      predictor  base - (1 - sigma_b) B(h) sum rho_k D_k          (rho: 0.5 when p = 2; none when p = 1)
      corrector  base - (1 - sigma_b) B(h) (sum rho_k D_k + rho_p (m_new - m_0))   (rho: R rho = b; 0.5 when p = 1)
    Orders: min(max_order, steps left, steps taken + 1); the corrector reuses its predictor's order. The last
    update goes to sigma 0, where e^-h = 0 and base is m_0."""
    lam = [math.log(1 - s) - math.log(s) if s > 0 else math.inf for s in sigmas]

    def update(x, a, order, history, new=None):
        m0, older = history[-1], history[-order:-1][::-1]
        if sigmas[a + 1] == 0.0:
            assert order == 1 and new is None
            return m0
        h = lam[a + 1] - lam[a]
        r = [(lam[a - k] - lam[a]) / h for k in range(1, order)] + [1.0]
        d = [(mk - m0) / rk for mk, rk in zip(older, r, strict=False)]
        big_b = math.expm1(-h)
        b = np.array([math.factorial(j) * -h * phi(j + 1, -h) / big_b for j in range(1, order + 1)])
        R = np.array([[rk ** j for rk in r] for j in range(order)])
        base = sigmas[a + 1] / sigmas[a] * x - (1 - sigmas[a + 1]) * math.expm1(-h) * m0
        if new is None:
            rho = [] if order == 1 else [0.5] if order == 2 else list(np.linalg.solve(R[:-1, :-1], b[:-1]))
            return base - (1 - sigmas[a + 1]) * big_b * sum((w * dk for w, dk in zip(rho, d, strict=True)), 0.0)
        rho = [0.5] if order == 1 else list(np.linalg.solve(R, b))
        return base - (1 - sigmas[a + 1]) * big_b * (sum((w * dk for w, dk in zip(rho[:-1], d, strict=True)), 0.0)
                                                      + rho[-1] * (new - m0))

    steps = len(sigmas) - 1
    x, history, previous, outputs = noise, [], None, []
    for i in range(steps):
        m = x - sigmas[i] * velocity(x, sigmas[i])
        if previous is not None:
            x = update(previous[0], i - 1, previous[1], history, new=m)
        history = (history + [m])[-max_order:]
        order = min(max_order, steps - i, i + 1)
        previous = (x, order)
        x = update(x, i, order, history)
        outputs.append(x)
    return outputs


def run_every_step(scheduler, velocity, noise):
    x, outputs = noise, []
    for t in scheduler.timesteps:
        sigma = float(scheduler.sigmas[scheduler.step_index])
        x = scheduler.step(velocity(x, sigma), t, x, return_dict=False)[0]
        outputs.append(x)
    return outputs


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 40])
def test_every_step_equals_the_plain_equations_on_a_gaussian_flow(steps):
    scheduler = WanFlowUniPCScheduler(coefficient_dtype="float64")
    scheduler.set_timesteps(steps)
    sigmas, _ = official_grid(steps)
    assert [float(s) for s in scheduler.sigmas] == sigmas
    noise = np.random.default_rng(steps).standard_normal(12)
    ours = run_every_step(scheduler, torch_velocity, torch.from_numpy(noise))
    plain = plain_unipc_bh2(gaussian_velocity, noise, sigmas)
    assert len(ours) == len(plain) == steps
    for i, (a, b) in enumerate(zip(ours, plain, strict=True)):
        np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-11, err_msg=f"step {i}")
    # the last step hands back that call's x0 prediction
    last_sigma = sigmas[-2]
    before_last = ours[-2].numpy() if steps > 1 else noise
    np.testing.assert_allclose(ours[-1].numpy(),
                               before_last - last_sigma * gaussian_velocity(before_last, last_sigma), atol=1e-12)


def test_float32_coefficients_as_the_official_code_stay_within_rounding():
    noise = torch.from_numpy(np.random.default_rng(3).standard_normal(12))
    results = {}
    for dtype in ("float32", "float64"):
        scheduler = WanFlowUniPCScheduler(coefficient_dtype=dtype)
        scheduler.set_timesteps(40)
        results[dtype] = run_every_step(scheduler, torch_velocity, noise)[-1]
    gap = float((results["float32"] - results["float64"]).abs().max())
    assert 0 < gap < 1e-5


def test_solver_converges_to_the_exact_flow():
    """Both statements could share a mistake; the exact Gaussian flow cannot: started on the exact flow, the
    final x0 prediction approaches the exact denoiser at the last sigma faster than first order as the steps
    double (x_t = (1 - t) mean + sqrt((1 - t)^2 std^2 + t^2) z carries every z along the exact flow)."""
    z = np.random.default_rng(1).standard_normal(12)
    exact_point = lambda t: (1 - t) * MEAN + np.sqrt((1 - t) ** 2 * STD ** 2 + t ** 2) * z  # noqa: E731
    errors = []
    for steps in (40, 80, 160):
        scheduler = WanFlowUniPCScheduler(coefficient_dtype="float64")
        scheduler.set_timesteps(steps)
        start, last = float(scheduler.sigmas[0]), float(scheduler.sigmas[-2])
        final = run_every_step(scheduler, torch_velocity, torch.from_numpy(exact_point(start)))[-1].numpy()
        errors.append(np.abs(final - gaussian_denoiser(exact_point(last), last)).max())
    assert errors[0] > errors[1] > errors[2] and errors[1] / errors[2] > 3.3, errors   # measured 1.1e-2, 3.5e-3, 9.4e-4


def test_timesteps_are_the_official_int64_grid():
    scheduler = WanFlowUniPCScheduler()
    scheduler.set_timesteps(40)
    _, official = official_grid(40)
    assert scheduler.timesteps.dtype == torch.int64 and scheduler.timesteps.tolist() == official
    assert official[:6] == [999, 991, 982, 973, 963, 954] and official[10] == 899 and official[-1] == 71
    assert sum(t > 900 for t in official) == 10   # ASM's early window (t > 900): steps 999 ... 911
    # diffusers' UniPC (flow sigmas, shift 3), the former stand-in, lands within 3 of these but not on them
    from diffusers import UniPCMultistepScheduler

    stand_in = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    stand_in.set_timesteps(40)
    gaps = [abs(int(a) - b) for a, b in zip(stand_in.timesteps, official, strict=True)]
    assert 0 < max(gaps) <= 3


def test_bad_use_is_refused():
    with pytest.raises(RuntimeError, match="set_timesteps"):
        WanFlowUniPCScheduler().step(torch.zeros(1), 999, torch.zeros(1))
    with pytest.raises(ValueError, match="coefficient_dtype"):
        WanFlowUniPCScheduler(coefficient_dtype="bfloat16")


def test_tiny_wan_pipeline_through_the_scheduler_equals_the_plain_solver_every_step():
    from PIL import Image

    from omiti2v.models import get_baseline

    baseline = get_baseline("wan2.1")
    settings = baseline.settings({"weights": "tiny", "dtype": "float32",
                                  "sizing": {"mode": "max_area", "max_area": 2560, "multiple": 16},
                                  "sampling": {"num_frames": 5, "num_inference_steps": 5}})
    pipe = baseline.build(settings)
    assert isinstance(pipe.scheduler, WanFlowUniPCScheduler) and pipe.scheduler.config.flow_shift == 3.0
    image, height, width = baseline.prepare_image(Image.linear_gradient("L").convert("RGB"), settings)
    kwargs = baseline.call_kwargs(pipe, image, "a cat", height, width, settings)
    calls, after_step = run_recording(pipe, kwargs)
    assert len(calls) == len(after_step) == 5

    sigmas, timesteps = official_grid(5)
    assert [int(c["timestep"].max()) for c in calls] == timesteps
    first = calls[0]
    condition = first["hidden_states"][:, 16:]
    timestep_of = dict(zip(sigmas, timesteps, strict=False))

    def velocity(x, sigma):
        with torch.no_grad():
            return pipe.transformer(**{**first, "hidden_states": torch.cat([x, condition], dim=1),
                                       "timestep": torch.tensor([timestep_of[sigma]])})[0]

    plain = plain_unipc_bh2(velocity, first["hidden_states"][:, :16], sigmas)
    for i, (ours, reference) in enumerate(zip(after_step, plain, strict=True)):
        torch.testing.assert_close(ours, reference.float(), rtol=1e-5, atol=1e-5, msg=f"step {i}")
    assert (after_step[-1] - after_step[-2]).abs().max() > 1e-3   # the last step really moved the latents
