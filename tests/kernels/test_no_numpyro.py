"""The pure-JAX kernels import and run with NumPyro unavailable.

``ppl_models/__init__.py`` imports its NumPyro-dependent parts (``fit``, ``Fit``, ...) lazily, so
importing ``ppl_models.kernels.<family>`` must not import NumPyro. Each check runs in a fresh
interpreter where ``import numpyro`` fails (``sys.modules['numpyro'] = None``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

BLOCK = "import sys\nsys.modules['numpyro'] = None  # `import numpyro` now raises ImportError\n"

CALLS = {
    "hmm": """
        import numpy as np
        from ppl_models.kernels import hmm
        log_pi = np.log([0.5, 0.5]); log_A = np.log([[0.9, 0.1], [0.2, 0.8]])
        ll = np.log([[0.9, 0.1], [0.8, 0.2], [0.05, 0.95]])
        lp = float(hmm.forward_log_prob(log_pi, log_A, ll))
        # brute force over the 8 paths
        import itertools
        ref = np.log(sum(np.exp(log_pi[z[0]] + ll[0, z[0]] + sum(log_A[z[t - 1], z[t]] + ll[t, z[t]]
                                                                 for t in (1, 2)))
                         for z in itertools.product(range(2), repeat=3)))
        assert abs(lp - ref) < 1e-5, (lp, ref)
        assert list(map(int, hmm.viterbi(log_pi, log_A, ll).path)) == [0, 0, 1]
    """,
    "mixture": """
        import numpy as np
        from ppl_models.kernels import mixture
        r = mixture.mixture_log_likelihood(np.log([[0.2, 0.4], [0.5, 0.1]]), np.log([0.25, 0.75]))
        ref = np.log(0.25 * 0.2 + 0.75 * 0.4) + np.log(0.25 * 0.5 + 0.75 * 0.1)
        assert abs(float(r.total) - ref) < 1e-5, (float(r.total), ref)
    """,
    "bayesnet": """
        import numpy as np
        from ppl_models.kernels import bayesnet
        log_cpts = [np.log([0.3, 0.7]), np.log([[0.9, 0.1], [0.4, 0.6]])]
        lp = np.asarray(bayesnet.complete_log_likelihood(log_cpts, [[], [0]], np.array([[0, 1], [1, 1]])))
        np.testing.assert_allclose(lp, np.log([0.3 * 0.1, 0.7 * 0.6]), rtol=1e-5)
    """,
    "lda": """
        import numpy as np
        from ppl_models.kernels import lda
        theta = np.array([[0.5, 0.5]]); beta = np.array([[0.6, 0.4], [0.1, 0.9]])
        r = lda.document_log_likelihood(theta, beta, np.array([[0, 1]]), np.array([[1, 1]]),
                                        include_coefficient=False)
        ref = np.log(0.5 * 0.6 + 0.5 * 0.1) + np.log(0.5 * 0.4 + 0.5 * 0.9)
        assert abs(float(np.sum(r.total)) - ref) < 1e-5, (r, ref)
    """,
}


def run_blocked(body: str) -> subprocess.CompletedProcess:
    code = BLOCK + textwrap.dedent(body) + "\nassert sys.modules['numpyro'] is None\nprint('ok')\n"
    env = {**os.environ, "PPL_MODELS_HOST_DEVICES": "0"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("family", sorted(CALLS))
def test_kernel_imports_and_runs_without_numpyro(family):
    r = run_blocked(CALLS[family])
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


def test_the_blocking_is_real_and_the_lazy_core_needs_numpyro():
    # With numpyro blocked, `import ppl_models` works but the lazy `fit` fails with NumPyro's
    # ImportError: the test above would catch an eager import of NumPyro.
    r = run_blocked("""
        import ppl_models
        assert 'fit' in ppl_models.__all__
        try:
            ppl_models.fit
        except ImportError as e:
            assert 'numpyro' in str(e), e
        else:
            raise AssertionError('ppl_models.fit imported without numpyro')
    """)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


def test_lazy_core_names_resolve_to_the_functions():
    import ppl_models as pm
    import ppl_models.fit as fit_submodule_or_function  # noqa: F401 (binds the submodule's name)
    from ppl_models import Fit, fit, load_fit, log_joint, log_joint_fn, sample_prior
    from ppl_models import inference

    # `ppl_models.fit` stays the function even after the submodule ppl_models/fit.py is imported
    assert pm.fit is inference.fit is fit and callable(fit)
    assert sys.modules["ppl_models.fit"].Fit is Fit is pm.Fit
    assert (load_fit, log_joint, log_joint_fn, sample_prior) == (
        sys.modules["ppl_models.fit"].load_fit, inference.log_joint, inference.log_joint_fn,
        inference.sample_prior)
    for name in pm.__all__:
        assert getattr(pm, name) is not None
