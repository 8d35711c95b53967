"""Devices: estimators configured for a GPU load and run on a CPU-only machine, and
low-precision embeddings keep the solver in full precision."""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.linear_model import Lasso

import skplice
import skplice.decomposition._splice
from skplice import CLIPEmbedder, SpLiCETransformer

ROOT = Path(skplice.__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings("ignore:No pretrained weights loaded")

WORDS = "dog cat beach car tree house river snow city boat bird sky road chair cup".split()


def images(n):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(24 + i, 28, 3), dtype=np.uint8) for i in range(n)]


@pytest.fixture
def fitted_on_gpu(tiny_clip):
    """An embedder and a transformer whose device says CUDA, as on the GPU machine that
    fitted them (the fit itself runs here, on the CPU: fitted state does not depend on
    the device), with the results they gave."""
    embedder = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu")
    X = embedder.transform(images(6))
    splice = SpLiCETransformer(
        dictionary=embedder.encode_text(WORDS), concept_names=WORDS, l1=0.05
    ).fit(torch.from_numpy(X))  # fitted from a tensor, as GPU code would
    W = splice.transform(X)
    embedder.set_params(device="cuda")
    splice.set_params(device="cuda")
    return embedder, splice, X, W


def test_fitted_state_is_numpy_and_pickles_without_torch(fitted_on_gpu):
    embedder, splice, _, _ = fitted_on_gpu
    fitted = {k: v for k, v in vars(splice).items() if k.endswith("_")}
    assert {"components_", "image_mean_", "concept_names_"} <= fitted.keys()
    plain = (np.ndarray, int, str, type(None))  # arrays and plain values, never tensors
    assert all(isinstance(v, plain) for v in fitted.values()), fitted
    for estimator in (embedder, splice):
        assert b"torch" not in pickle.dumps(estimator)  # nothing for CUDA to restore


_CPU_ONLY = textwrap.dedent(
    """
    import pickle, sys, warnings
    import numpy as np, open_clip, torch

    assert not torch.cuda.is_available(), "the subprocess should see no GPU"
    folder = sys.argv[1]
    open_clip.add_model_config(sys.argv[2])
    warnings.simplefilter("ignore")
    with open(f"{folder}/estimators.pkl", "rb") as f:
        embedder, splice = pickle.load(f)
    inputs = np.load(f"{folder}/images.npy")
    errors = []
    for estimator, X in ((embedder, list(inputs)), (splice, np.load(f"{folder}/X.npy"))):
        try:
            estimator.transform(X)
        except ValueError as exc:
            errors.append(str(exc))
    embedder.set_params(device=None)
    splice.set_params(device=None)
    np.save(f"{folder}/X_cpu.npy", embedder.transform(list(inputs)))
    np.save(f"{folder}/W_cpu.npy", splice.transform(np.load(f"{folder}/X.npy")).toarray())
    print("\\n".join(errors))
    """
)


def test_gpu_configured_estimators_run_on_a_cpu_only_machine(
    fitted_on_gpu, tiny_clip_config_path, tmp_path
):
    embedder, splice, X, W = fitted_on_gpu
    batch = np.random.default_rng(1).integers(0, 256, size=(3, 24, 28, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", batch)
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "estimators.pkl").write_bytes(pickle.dumps((embedder, splice)))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", _CPU_ONLY, str(tmp_path), str(tiny_clip_config_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    errors = result.stdout.strip().splitlines()
    # Asked for CUDA where there is none: a clear error that says what to change.
    assert len(errors) == 2
    for message in errors:
        assert "device='cuda' asks for CUDA" in message
        assert "set_params(device=None)" in message
    # Once told, the same pickles give the same bits there as here.
    embedder_here = pickle.loads(pickle.dumps(embedder)).set_params(device="cpu")
    np.testing.assert_array_equal(
        np.load(tmp_path / "X_cpu.npy"), embedder_here.transform(list(batch))
    )
    np.testing.assert_array_equal(np.load(tmp_path / "W_cpu.npy"), W.toarray())


def test_tensor_inputs_of_any_float_precision(fitted_on_gpu):
    _, splice, X, W = fitted_on_gpu
    splice = splice.set_params(device="cpu")
    np.testing.assert_array_equal(splice.transform(torch.from_numpy(X)).toarray(), W.toarray())
    for dtype in (torch.float16, torch.bfloat16):
        low = torch.from_numpy(X).to(dtype)
        W_low = splice.transform(low)
        assert W_low.dtype == np.float32
        expected = splice.transform(low.float().numpy())
        np.testing.assert_array_equal(W_low.toarray(), expected.toarray())
    with pytest.raises(ValueError, match="NaN"):
        splice.transform(torch.full((2, X.shape[1]), float("nan"), dtype=torch.bfloat16))


@pytest.mark.filterwarnings("ignore:Objective did not converge")  # the float64 oracle's
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_embeddings_are_decomposed_at_full_precision(
    tiny_clip, precision, monkeypatch
):
    embedder = CLIPEmbedder(tiny_clip, pretrained=None, device="cpu", precision=precision)
    try:
        X = embedder.transform(images(8))
        dictionary = embedder.encode_text(WORDS)
    except RuntimeError as exc:  # pragma: no cover - a CPU without these kernels
        pytest.skip(f"{precision} is not supported on this CPU: {exc}")
    assert X.dtype == dictionary.dtype == np.float32

    seen = []
    solver = skplice.decomposition._splice.nonnegative_lasso

    def recording(z, C, *args, **kwargs):
        seen.append((z.dtype, C.dtype))
        return solver(z, C, *args, **kwargs)

    monkeypatch.setattr(skplice.decomposition._splice, "nonnegative_lasso", recording)
    l1 = 0.05
    splice = SpLiCETransformer(dictionary=dictionary, concept_names=WORDS, l1=l1)
    W = splice.fit(X).transform(X)
    assert seen and set(seen) == {(torch.float32, torch.float32)}
    assert sp.issparse(W) and W.dtype == np.float32 and W.nnz > 0

    # The weights solve the lasso on these embeddings as well as float64 Lasso does.
    Z = X.astype(np.float64) / np.linalg.norm(X, axis=1, keepdims=True)
    Z = Z - splice.image_mean_
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    C = splice.components_
    lasso = Lasso(alpha=l1 / (2 * C.shape[1]), positive=True, fit_intercept=False, tol=1e-12)
    for w, z in zip(W.toarray().astype(np.float64), Z, strict=True):
        oracle = lasso.fit(C.T, z).coef_
        ours = np.sum((w @ C - z) ** 2) + l1 * w.sum()
        best = np.sum((oracle @ C - z) ** 2) + l1 * oracle.sum()
        assert ours <= best * (1 + 1e-5) + 1e-7
