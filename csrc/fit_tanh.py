"""Fit the float32 tanh of csrc/activations.h and measure its error: ``python csrc/fit_tanh.py``.

tanh(x) = x P(z) / Q(z), z = x^2, P of degree 6 and Q of degree 3 with Q(0) = 1, on 0 <= x <= 9
(beyond 9 tanh rounds to 1 in float32, so the kernel clamps x there). The fit minimises the
largest relative error: linear least squares on P - g Q (g = tanh(x) / x), reweighted by 1 / (g Q)
of the previous round (Sanathanan-Koerner) and towards the worst points (Lawson), in the scaled
variable s = z / 81 for conditioning. Then the float32 evaluation the kernel does (Horner,
coefficients rounded to float32, result clamped to [-1, 1]) is checked against float64 tanh.
"""
import numpy as np

CLAMP = 9.0
P_DEGREE, Q_DEGREE = 6, 3


def fit(rounds: int = 60, n: int = 4000) -> tuple[np.ndarray, np.ndarray, float]:
    """P and Q's coefficients in z, lowest first, and the float64 fit's largest relative error."""
    k = np.arange(n)
    x = np.concatenate([CLAMP * (1 - np.cos(np.pi * (k + 0.5) / (2 * n))), np.linspace(1e-3, CLAMP, n)])
    g = np.tanh(x) / x
    s = x * x / CLAMP**2
    weight, q_prev = np.ones_like(s), np.ones_like(s)
    for _ in range(rounds):
        a = np.hstack([np.vander(s, P_DEGREE + 1, increasing=True),
                       -g[:, None] * np.vander(s, Q_DEGREE + 1, increasing=True)[:, 1:]])
        w = weight / (g * q_prev)
        sol = np.linalg.lstsq(a * w[:, None], g * w, rcond=None)[0]
        p, q = sol[:P_DEGREE + 1], np.concatenate([[1.0], sol[P_DEGREE + 1:]])
        q_prev = np.polyval(q[::-1], s)
        err = np.abs(np.polyval(p[::-1], s) / q_prev - g) / g
        weight = weight * np.sqrt(err / err.max()) + 1e-12
        weight /= weight.mean()
    scale = CLAMP**2
    return p / scale ** np.arange(P_DEGREE + 1), q / scale ** np.arange(Q_DEGREE + 1), float(err.max())


def tanh_f32(x: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The kernel's float32 evaluation (separate multiply and add: the baseline and AVX2 clones)."""
    f = np.float32
    x = np.clip(x, f(-CLAMP), f(CLAMP)).astype(f)
    z = x * x
    pz, qz = f(p[-1]), f(q[-1])
    for c in p[-2::-1]:
        pz = pz * z + f(c)
    for c in q[-2::-1]:
        qz = qz * z + f(c)
    return np.clip(x * pz / qz, f(-1), f(1))


def main() -> None:
    p, q, fit_err = fit()
    print(f"float64 fit: largest relative error {fit_err:.2e}")
    print("P (z^0 first):", ", ".join(str(np.float32(c)) + "f" for c in p))
    print("Q (z^0 first):", ", ".join(str(np.float32(c)) + "f" for c in q))
    x = np.concatenate([np.linspace(-12, 12, 3_000_001, dtype=np.float32),
                        (10.0 ** np.linspace(-38, 1.1, 300_000)).astype(np.float32)])
    x = np.concatenate([x, -x])
    y = tanh_f32(x, p, q).astype(np.float64)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    print(f"float32 over [-12, 12]: at most {(np.abs(y - exact) / ulp).max():.2f} ulp, "
          f"{(np.abs(y - exact) / np.maximum(np.abs(exact), 1e-38)).max():.2e} relative; "
          f"largest |tanh| {np.abs(y).max()}; odd: {np.array_equal(tanh_f32(-x, p, q), -tanh_f32(x, p, q))}")


if __name__ == "__main__":
    main()
