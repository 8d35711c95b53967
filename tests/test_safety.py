"""Safety: no unpickling of untrusted bytes, cache paths that user strings cannot steer,
and no partial files after an interruption."""

import ast
import json
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import skplice
from skplice import (
    CLIPEmbedder,
    ConceptEditor,
    SpLiCETransformer,
    TextEmbedder,
    ZeroShotClassifier,
    load_vocabulary,
)
from skplice.concepts import encode_concepts
from skplice.exceptions import InconsistentVersionWarning

PACKAGE = Path(skplice.__file__).resolve().parent

# -- no unsafe deserialisation in the source -------------------------------------------------

_FORBIDDEN_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("cloudpickle", "load"),
    ("cloudpickle", "loads"),
    ("dill", "load"),
    ("dill", "loads"),
    ("joblib", "load"),
    ("marshal", "loads"),
    ("shelve", "open"),
    ("yaml", "load"),
    ("jit", "load"),  # torch.jit.load runs TorchScript
}


def _keyword(call, name):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _is_constant(node, value):
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_loads(source, filename="<source>"):
    """Lines of ``source`` that could unpickle untrusted bytes."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module in {"pickle", "cloudpickle", "dill"}:
            problems.append((node.lineno, f"from {node.module} import ..."))
        if isinstance(node, ast.keyword) and node.arg in {"weights_only", "allow_pickle"}:
            if not _is_constant(node.value, node.arg == "weights_only"):
                problems.append((node.value.lineno, f"{node.arg}={ast.unparse(node.value)}"))
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        name = (owner_name, node.func.attr)
        if name in _FORBIDDEN_CALLS:
            problems.append((node.lineno, ast.unparse(node.func)))
        elif name == ("torch", "load") and not _is_constant(_keyword(node, "weights_only"), True):
            problems.append((node.lineno, "torch.load without weights_only=True"))
        elif name in {("np", "load"), ("numpy", "load")}:
            allow = _keyword(node, "allow_pickle")
            if allow is not None and not _is_constant(allow, False):
                problems.append((node.lineno, "np.load with allow_pickle"))
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in {"eval", "exec"}:
            problems.append((node.lineno, node.func.id))
    return problems


def test_the_scanner_catches_unsafe_loads():
    snippet = (
        "import pickle, torch, numpy as np\n"
        "torch.load(path)\n"
        "torch.load(path, weights_only=False)\n"
        "np.load(path, allow_pickle=True)\n"
        "pickle.loads(blob)\n"
        "torch.jit.load(path)\n"
        "eval(text)\n"
        "torch.load(path, weights_only=True)\n"
        "np.load(path, allow_pickle=False)\n"
        "np.load(path)\n"
    )
    lines = sorted({line for line, _ in unsafe_loads(snippet)})
    assert lines == [2, 3, 4, 5, 6, 7]


def test_no_unsafe_deserialisation_in_skplice():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    found = {
        f"{path.relative_to(PACKAGE)}:{line}": what
        for path in files
        for line, what in unsafe_loads(path.read_text(encoding="utf-8"), str(path))
    }
    assert found == {}


@pytest.mark.filterwarnings("ignore:No pretrained weights loaded")
def test_a_malicious_checkpoint_is_refused_without_running_its_payload(tiny_clip, tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    checkpoint = tmp_path / "weights.pt"
    torch.save({"state_dict": {"visual.proj": Payload()}}, checkpoint)
    embedder = CLIPEmbedder(tiny_clip, pretrained=str(checkpoint), device="cpu")
    with pytest.raises(ValueError, match=r"Could not load checkpoint .*weights\.pt") as info:
        embedder.transform([np.zeros((8, 8, 3), dtype=np.uint8)])
    assert "Unpickl" in str(info.value) or "weights_only" in str(info.value)
    assert not marker.exists()
    # The control: unpickled without weights_only, the same file runs its payload.
    torch.load(checkpoint, weights_only=False)
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:No pretrained weights loaded")
def test_a_malicious_checkpoint_in_a_local_dir_is_a_clear_error(tiny_clip_config_path, tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    folder = tmp_path / "model"
    folder.mkdir()
    config = json.loads(tiny_clip_config_path.read_text())
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    torch.save({"visual.proj": Payload()}, folder / "open_clip_pytorch_model.bin")
    embedder = CLIPEmbedder(f"local-dir:{folder}", device="cpu")
    with pytest.raises(ValueError, match=r"Could not load the open_clip model in folder .*model"):
        embedder.transform([np.zeros((8, 8, 3), dtype=np.uint8)])
    (folder / "open_clip_pytorch_model.bin").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="Could not load the open_clip model in folder"):
        embedder.transform([np.zeros((8, 8, 3), dtype=np.uint8)])
    assert not marker.exists()


# -- pickles say which skplice wrote them -------------------------------------------------------


class LetterCounts:
    """A picklable toy text encoder."""

    def encode_text(self, texts):
        return np.array([[len(t), 1.0, t.count("x")] for t in texts])


def _public_estimators(tiny_clip, minilm_path):
    X = np.random.default_rng(0).normal(size=(4, 3))
    return [
        SpLiCETransformer(dictionary="identity").fit(X),
        ZeroShotClassifier({"a": "x", "b": "y"}, encoder=LetterCounts()).fit(X),
        ConceptEditor(concepts=["a", "b", "c"]).fit(np.abs(X)),
        CLIPEmbedder(tiny_clip, pretrained=None),
        TextEmbedder(minilm_path),
    ]


def test_pickles_carry_the_skplice_version_and_a_mismatch_warns(
    tiny_clip, minilm_path, monkeypatch
):
    for estimator in _public_estimators(tiny_clip, minilm_path):
        name = type(estimator).__name__
        data = pickle.dumps(estimator)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the same version: silent
            same = pickle.loads(data)
        assert vars(same).keys() == vars(estimator).keys()
        monkeypatch.setattr("skplice.utils._pickle.__version__", "99.0")
        with pytest.warns(InconsistentVersionWarning) as caught:
            pickle.loads(data)
        warning = caught[0].message
        assert (warning.estimator_name, warning.original_version) == (name, skplice.__version__)
        assert warning.current_version == "99.0"
        assert f"{name} written by skplice {skplice.__version__} with skplice 99.0" in str(warning)
        monkeypatch.undo()
        state = estimator.__getstate__()
        del state["_skplice_version"]  # as written by a skplice without the stamp
        unstamped = object.__new__(type(estimator))
        with pytest.warns(InconsistentVersionWarning, match="without a skplice version"):
            unstamped.__setstate__(state)


# -- cache paths come from hashes, never from user strings ------------------------------------


def files_under(folder):
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


HOSTILE = ["../../x", "../../../../tmp/evil", "/etc/passwd", "a/../../b", "..\\..\\x"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_model_and_vocabulary_names_create_no_file(name, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("SKPLICE_HOME", str(home))
    # Relative names resolve inside tmp_path, where an escape would show.
    cwd = tmp_path / "a" / "b" / "c" / "d"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    before = files_under(tmp_path)
    with pytest.raises(ValueError, match=r"Unknown open_clip model|does not exist"):
        CLIPEmbedder(name, pretrained=None).fit([np.zeros((4, 4))])
    with pytest.raises(ValueError, match="does not exist"):
        CLIPEmbedder(f"local-dir:{name}").fit([np.zeros((4, 4))])
    with pytest.raises(ValueError, match="does not exist"):
        TextEmbedder(name).fit(["a"])
    if not Path(name).is_file():
        with pytest.raises(ValueError, match="no file was found"):
            load_vocabulary(name)
    assert files_under(tmp_path) == before


class HostileEncoder:
    """A text encoder whose identity and texts are full of path syntax."""

    def _encoder_identity(self):
        return "../../../../outside/../x\\y\x00z"

    def encode_text(self, texts):
        return np.array([[len(t), t.count("/"), t.count("."), 1.0] for t in texts])


def test_dictionary_cache_files_are_named_by_hash_inside_the_home(tmp_path, monkeypatch):
    home = tmp_path / "nested" / "home"
    monkeypatch.setenv("SKPLICE_HOME", str(home))
    concepts = ["../../escape", "a/b/c", "..", "/etc/passwd", "x\\..\\y"]
    encode_concepts(concepts, HostileEncoder(), template="../{}/..")
    splice = SpLiCETransformer(vocabulary=concepts, encoder=HostileEncoder(), center=False)
    splice.fit(np.random.default_rng(0).normal(size=(3, 4)))
    created = files_under(tmp_path)
    assert len(created) == 2
    for path in created:
        assert re.fullmatch(r"nested/home/dictionaries/[0-9a-f]{64}\.npz", path), path


# -- interruptions leave no partial file ------------------------------------------------------


class InterruptedEncoder(HostileEncoder):
    def encode_text(self, texts):
        raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["encoding", "writing"])
def test_interrupted_dictionary_encoding_leaves_no_file(where, tmp_path, monkeypatch):
    monkeypatch.setenv("SKPLICE_HOME", str(tmp_path))
    encoder = InterruptedEncoder() if where == "encoding" else HostileEncoder()
    if where == "writing":

        def interrupted(*args):
            raise KeyboardInterrupt

        monkeypatch.setattr("skplice.utils._files.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        encode_concepts(["dog", "cat"], encoder)
    assert files_under(tmp_path) == set()
    monkeypatch.undo()
    monkeypatch.setenv("SKPLICE_HOME", str(tmp_path))
    first = encode_concepts(["dog", "cat"], HostileEncoder())  # the next run is clean
    np.testing.assert_array_equal(encode_concepts(["dog", "cat"], HostileEncoder()), first)
    assert len(files_under(tmp_path)) == 1
