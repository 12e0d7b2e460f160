"""The flag autotuner (targets/tune.py): candidates compiled, checked against each other, timed; the winner cached."""
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgeq import targets
from edgeq.errors import EdgeqError
from edgeq.pipeline.compile import STAGE_FILES, compile_model
from edgeq.quant import Plan, quantize, to_integer
from edgeq.targets import tune as tune_mod
from edgeq.targets.host import OPT_FLAGS

VARIANTS = {"im2col": OPT_FLAGS, "im2col-tiles64k": OPT_FLAGS + ("--iree-llvmcpu-matmul-tile-bytes=65536",),
            "broken": OPT_FLAGS + ("--iree-no-such-flag",)}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEQ_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tune_mod, "CPU_VARIANTS", VARIANTS)
    return tmp_path / "cache" / "tune"


@pytest.fixture(scope="module")
def integer(digits):
    cal = digits.calibration[:4]
    return to_integer(quantize(digits.module, Plan.uniform("w8a8"), cal), cal[:1]), cal[:1]


def test_tuned_compile_is_cached_and_bit_exact(integer, cache, tmp_path, monkeypatch):
    im, example = integer
    art = compile_model(im, example, "host", tmp_path / "a", tune=True)
    tuning = art.manifest.tuning
    assert set(tuning["median_ms"]) == {"im2col", "im2col-tiles64k"}
    assert tuning["dropped"]["broken"].startswith("does not compile") and "no-such-flag" in tuning["dropped"]["broken"]
    assert tuning["median_ms"][tuning["winner"]] == min(tuning["median_ms"].values())
    assert art.manifest.target.extra_flags == VARIANTS[tuning["winner"]]
    assert art.manifest.flags[-len(VARIANTS[tuning["winner"]]):] == list(VARIANTS[tuning["winner"]])
    x = im.quantize_input(example)
    with torch.no_grad():
        assert np.array_equal(art.run([x.numpy()])[0], im.graph_module(x).numpy())

    # a second tuning of the same module compiles and times nothing
    (entry,) = cache.glob("*.json")
    with monkeypatch.context() as m:
        m.setattr("edgeq.pipeline.compile.compile_input", lambda *a, **k: pytest.fail("compiled again"))
        hit = tune_mod.tune(tmp_path / "a" / STAGE_FILES["after_passes"], targets.get("host"), [x.numpy()])
    assert hit.cached and hit.winner == tuning["winner"] and hit.median_ms == tuning["median_ms"]

    # a corrupt entry is timed again and rewritten, never trusted
    entry.write_text('{"winner": "im2col", "flags": [')
    again = tune_mod.tune(tmp_path / "a" / STAGE_FILES["after_passes"], targets.get("host"), [x.numpy()])
    assert not again.cached and json.loads(entry.read_text())["winner"] == again.winner

    # the CLI prints the table of the cached tuning
    from edgeq.cli import app

    r = CliRunner().invoke(app, ["compile", "digits", "--tune", "-o", str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    assert "chosen" in r.output and "does not compile" in r.output


def test_variant_with_other_outputs_is_dropped(integer, cache, tmp_path):
    """A flag set whose module computes anything else is never chosen, however fast."""
    im, example = integer
    art = compile_model(im, example, "host", tmp_path)
    host = targets.get("host")

    class Miscompiling:
        spec, simulated, emulated = host.spec, False, False

        def run(self, vmfb, inputs, function="main", n_outputs=1):
            out = host.run(vmfb, inputs)
            return [o + 1 for o in out] if vmfb.stem == "im2col-tiles64k" else out

        def measure(self, vmfb, inputs, repetitions=20, function="main"):
            return host.measure(vmfb, inputs, repetitions)

    t = tune_mod.tune(tmp_path / STAGE_FILES["after_passes"], Miscompiling(), [im.quantize_input(example).numpy()])
    assert t.winner == "im2col" and set(t.median_ms) == {"im2col"}
    assert t.dropped["im2col-tiles64k"] == "outputs differ from those of im2col"


@pytest.mark.parametrize("target,why", [("arm64", "emulated"), ("accel-sim", "simulated"),
                                        ("vulkan", "no flag variants")])
def test_tuning_refused_where_times_mislead(target, why):
    with pytest.raises(EdgeqError, match=why):
        tune_mod.variants_for(targets.get(target))
