"""FramePack's flow-matching UniPC scheduler: against a plain statement of the bh1 update equations (phi
functions by quadrature) on a closed-form Gaussian flow, the official sigmas/timesteps at the 640 bucket, and a
tiny FramePack pipeline run through it against the plain solver driven by the same transformer."""

import math

import numpy as np
import pytest
import torch
from flow_reference import MEAN, STD, gaussian_denoiser, phi, run_recording, torch_velocity

from omiti2v.schedulers import FramePackUniPCScheduler


def framepack_mu(tokens: float) -> float:
    """The official mu of one section of `tokens` latent tokens: 0.5 -> 1.15 over 256 -> 4096, capped at ln 7."""
    return min(0.5 + (1.15 - 0.5) * (tokens - 256) / (4096 - 256), math.log(7.0))


def plain_unipc_bh1(denoise, noise, sigmas, max_order=3):
    """UniPC-bh1 in data prediction with lambda = -log(sigma), written from the equations: per step of order p
    from s_prev to s (h = lambda - lambda_prev), with D_k = (m_{-k} - m_0) / r_k, r_k = (lambda_{-k} - lambda_prev)/h,
    b_j = j! phi_{j+1}(-h), R[j][k] = r_k^j (r_p = 1):
      predictor  x_p = (s/s_prev) x - (e^{-h} - 1) m_0 + h * sum rho_p D   (rho_p: R[:-1,:-1] rho = b[:-1];
                                                                            0.5 when p = 2; none when p = 1)
      corrector  x   = (s/s_prev) x - (e^{-h} - 1) m_0 + h * (sum rho_c D + rho_c[-1] (m_new - m_0))
                                                                           (rho_c: R rho = b; 0.5 when p = 1)
    sigmas end with 0, which is never visited: the result is the x0 prediction at the last non-zero sigma."""
    calls = len(sigmas) - 1
    order = max(1, min(max_order, calls - 1))
    x, history = noise, [(sigmas[0], denoise(noise, sigmas[0]))]
    for i in range(1, calls):
        p, s = min(i, order), sigmas[i]
        (s_prev, m0), older = history[-1], history[-p:-1][::-1]
        h = math.log(s_prev) - math.log(s)
        r = [(math.log(s_prev) - math.log(sk)) / h for sk, _ in older] + [1.0]
        d = [(mk - m0) / rk for (_, mk), rk in zip(older, r, strict=False)]
        b = np.array([math.factorial(j) * phi(j + 1, -h) for j in range(1, p + 1)])
        R = np.array([[rk ** j for rk in r] for j in range(p)])
        base = (s / s_prev) * x - math.expm1(-h) * m0
        rho_p = [] if p == 1 else [0.5] if p == 2 else list(np.linalg.solve(R[:-1, :-1], b[:-1]))
        rho_c = [0.5] if p == 1 else list(np.linalg.solve(R, b))
        x_pred = base + h * sum(rk * dk for rk, dk in zip(rho_p, d, strict=True)) if p > 1 else base
        m_new = denoise(x_pred, s)
        x = base + h * (sum(rk * dk for rk, dk in zip(rho_c[:-1], d, strict=True)) + rho_c[-1] * (m_new - m0))
        history = (history + [(s, m_new)])[-order:]
    return history[-1][1]


def run_scheduler(scheduler, velocity, noise):
    x = noise
    for t in scheduler.timesteps:
        sigma = float(scheduler.sigmas[scheduler.step_index])
        x = scheduler.step(velocity(x, sigma), t, x, return_dict=False)[0]
    return x


@pytest.mark.parametrize("steps", [2, 3, 4, 25])
def test_scheduler_equals_the_plain_equations_on_a_gaussian_flow(steps):
    scheduler = FramePackUniPCScheduler(timestep_dtype="float64")
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:-1], mu=math.log(7.0))
    noise = np.random.default_rng(steps).standard_normal(12)
    ours = run_scheduler(scheduler, torch_velocity, torch.from_numpy(noise)).numpy()
    sigmas = [float(s) for s in scheduler.sigmas]
    plain = plain_unipc_bh1(gaussian_denoiser, noise, sigmas)
    np.testing.assert_allclose(ours, plain, rtol=0, atol=1e-12)


def test_scheduler_converges_to_the_exact_flow_at_third_order():
    """Both statements could share a mistake; the exact Gaussian flow cannot. Steps uniform in lambda =
    -log(sigma) (mu = 0: no shift) down to sigma = e^-2; the result is the x0 prediction at that sigma."""
    noise = np.random.default_rng(1).standard_normal(12)
    t = math.exp(-2.0)
    exact = gaussian_denoiser((1 - t) * MEAN + np.sqrt((1 - t) ** 2 * STD ** 2 + t ** 2) * noise, t)
    errors = []
    for steps in (40, 80):
        scheduler = FramePackUniPCScheduler(timestep_dtype="float64")
        scheduler.set_timesteps(sigmas=np.exp(-np.linspace(0.0, 2.0, steps)), mu=0.0)
        errors.append(np.abs(run_scheduler(scheduler, torch_velocity, torch.from_numpy(noise)).numpy() - exact).max())
    assert errors[1] < 2e-5 and errors[0] / errors[1] > 5   # measured 4.8e-5 -> 7.4e-6 (Euler: 3.8e-2 -> 1.9e-2)


def test_timesteps_at_the_640_bucket_are_the_official_shifted_sigmas():
    # One section at the 480x832 bucket: 9 latent frames x 60 x 104 latent pixels, 2x2 patches.
    tokens = 9 * (480 // 8) * (832 // 8) / 4
    assert tokens == 14040 and framepack_mu(tokens) == pytest.approx(math.log(7.0))
    official = 7.0 / (7.0 + (1.0 / torch.linspace(1.0, 0.0, 26) - 1.0))  # flux shift, exp(mu) = 7, float32
    scheduler = FramePackUniPCScheduler()
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, 26)[:-1], mu=framepack_mu(tokens))
    np.testing.assert_allclose(scheduler.sigmas.numpy() * 1000, official.numpy() * 1000, rtol=0, atol=1e-3)
    assert [round(float(s) * 1000, 2) for s in scheduler.sigmas[[0, 1, 2, 10, 11, 24]]] == \
        [1000.0, 994.08, 987.73, 913.04, 899.08, 225.81]
    # The transformer (and ASM's t > 900 gate) see them cast to bf16: steps of 4 near 1000.
    assert torch.equal(scheduler.timesteps, (official[:-1] * 1000).to(torch.bfloat16).float())
    assert scheduler.timesteps[:13].tolist() == [1000, 996, 988, 980, 972, 964, 956, 948, 936, 924, 912, 900, 884]
    assert int((scheduler.timesteps > 900).sum()) == 11
    # By hand: shifted sigma > 0.9 (before the cast) <=> t_unshifted > 0.9 / (0.9 + 7 * 0.1) = 0.5625, i.e.
    # 1 - k/25 > 0.5625 <=> k <= 10: 11 steps, and the bf16 cast moves none across 900 (899.08 -> 900, not > 900).
    assert sum(1 - k / 25 > 0.9 / (0.9 + 0.7) for k in range(25)) == 11
    assert scheduler.solver_order == 3 and len(scheduler.timesteps) == 25
    # diffusers' FramePack pipeline derives mu from this scheduler's config the same way (then caps it at ln 7).
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_framepack import calculate_shift

    config = scheduler.config
    for tokens_ in (300.0, 1000.0, tokens):
        mu = min(calculate_shift(tokens_, config.base_image_seq_len, config.max_image_seq_len, config.base_shift,
                                 config.max_shift), math.log(7.0))
        assert mu == pytest.approx(framepack_mu(tokens_))


def test_default_mu_is_the_cap_and_bad_use_is_refused():
    a, b = FramePackUniPCScheduler(), FramePackUniPCScheduler()
    a.set_timesteps(25)
    b.set_timesteps(sigmas=np.linspace(1.0, 0.0, 26)[:-1], mu=math.log(7.0))
    assert torch.equal(a.timesteps, b.timesteps)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        FramePackUniPCScheduler().step(torch.zeros(1), 1000, torch.zeros(1))
    with pytest.raises(ValueError, match="timestep_dtype"):
        FramePackUniPCScheduler(timestep_dtype="int8")


def test_tiny_framepack_pipeline_through_the_scheduler_equals_the_plain_solver():
    from PIL import Image

    from omiti2v.models import get_baseline

    baseline = get_baseline("framepack")
    settings = baseline.settings({"weights": "tiny", "dtype": "float32", "sizing": {"mode": "bucket", "bucket": 48},
                                  "teacache": {"enabled": False},
                                  "sampling": {"num_frames": 9, "latent_window_size": 2, "num_inference_steps": 6}})
    pipe = baseline.build(settings)
    assert isinstance(pipe.scheduler, FramePackUniPCScheduler) and pipe.scheduler.config.timestep_dtype == "float32"
    image, height, width = baseline.prepare_image(Image.linear_gradient("L").convert("RGB"), settings)
    kwargs = baseline.call_kwargs(pipe, image, "a cat", height, width, settings)
    calls, finals = run_recording(pipe, kwargs)
    assert len(calls) == 6 and len(finals) == 6

    first = calls[0]
    latent_frames, lat_h, lat_w = first["hidden_states"].shape[2:]
    mu = framepack_mu(latent_frames * lat_h * lat_w / 4)
    unshifted = torch.linspace(1.0, 0.0, 7)
    sigmas = [float(s) for s in math.exp(mu) / (math.exp(mu) + (1.0 / unshifted - 1.0))]
    seen = []

    def denoise(x, sigma):
        t = torch.tensor([sigma]) * 1000.0   # in float32, the tiny transformer's dtype (bf16 at real size)
        seen.append(float(t))
        with torch.no_grad():
            v = pipe.transformer(**{**first, "hidden_states": x, "timestep": t})[0].float()
        return x - sigma * v

    plain = plain_unipc_bh1(denoise, first["hidden_states"].double().float(), sigmas)
    assert seen == [float(c["timestep"].max()) for c in calls]
    torch.testing.assert_close(finals[-1], plain, rtol=1e-5, atol=1e-5)
    assert (finals[-1] - finals[-2]).abs().max() > 1e-3   # the last step really moved the latents


def test_x0_is_taken_from_the_sample_rounded_to_the_model_dtype():
    """The official wrapper computes x0 = bf16(x) - sigma * v (x cast to the transformer's dtype for the call and
    kept so): one step returns that x0; a whole solve equals the plain solver whose denoiser rounds x the same way."""
    noise = torch.from_numpy(np.random.default_rng(5).standard_normal(12))
    one = FramePackUniPCScheduler(timestep_dtype="bfloat16")
    one.set_timesteps(sigmas=[0.7], mu=0.0)
    v = torch_velocity(noise, 0.7)
    x0 = one.step(v, one.timesteps[0], noise, return_dict=False)[0]
    assert torch.equal(x0, noise.to(torch.bfloat16).double() - 0.699999988079071 * v)
    assert float((x0 - (noise - 0.699999988079071 * v)).abs().max()) > 1e-3

    def rounded(x, sigma):
        return x.to(torch.bfloat16).double()

    scheduler = FramePackUniPCScheduler(timestep_dtype="bfloat16")
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, 9)[:-1], mu=math.log(7.0))
    ours = run_scheduler(scheduler, lambda x, s: torch_velocity(rounded(x, s), s), noise).numpy()
    plain = plain_unipc_bh1(lambda x, s: (rounded(torch.from_numpy(x), s) - s * torch_velocity(
        rounded(torch.from_numpy(x), s), s)).numpy(), noise.numpy(), [float(s) for s in scheduler.sigmas])
    np.testing.assert_allclose(ours, plain, rtol=0, atol=1e-12)
