"""`edgeq optimize`: the budget holds as measured on the target, the run resumes after a kill, the report renders,
the impossible is said."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeq.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def host_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("opt") / "out"
    argv = ["optimize", "digits", "--latency-ms", "0.5", "--repetitions", "5", "-o", str(out)]
    r = runner.invoke(app, argv + ["--quiet"])
    assert r.exit_code == 0, r.output
    return out, argv


def test_optimize_meets_a_measured_budget_and_resumes(host_run, monkeypatch):
    out, argv = host_run
    report = json.loads((out / "report.json").read_text())
    chosen = report["iterations"][report["chosen"]]
    assert report["met"] and chosen["measured_ms"] <= 0.5 and all(it["bit_exact"] for it in report["iterations"])
    assert report["accuracy"]["quantized"] >= report["accuracy"]["fp32"] - 1.0
    plan = json.loads((out / "plan.json").read_text())
    assert {k: f"w{v['w_bits']}a{v['a_bits']}" for k, v in plan["layers"].items()} == chosen["plan"]
    for name in ("model.vmfb", "latency_table.json", "sensitivity.json"):
        assert (out / name).stat().st_size > 0
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "predicted" in page

    # Run it again: every iteration's module and measurement is reused, nothing compiled.
    import edgeq.pipeline.optimize as loop

    monkeypatch.setattr(loop, "compile_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recompiled")))
    r = runner.invoke(app, argv + ["--json"])
    assert r.exit_code == 0, r.output
    again = json.loads(r.output[r.output.index("{"):])
    assert [it["measured_ms"] for it in again["iterations"]] == [it["measured_ms"] for it in report["iterations"]]
    assert again["work"]["iterations_built"] == 0 and again["work"]["latency_entries_measured"] == 0


def test_report_renders_in_headless_chromium(host_run, tmp_path):
    """The page a person opens: every section laid out, both plots decoded, the screenshot not blank."""
    out, _ = host_run
    probe = tmp_path / "probe.html"   # a copy that writes what the browser laid out into the DOM
    probe.write_text((out / "report.html").read_text() + """<script>addEventListener("load", () =>
      document.body.setAttribute("data-rendered", JSON.stringify({
        sections: [...document.querySelectorAll("h2")].map(h => [h.textContent, h.getBoundingClientRect().height]),
        images: [...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]),
        page: document.documentElement.clientWidth})))</script>""")
    chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2000"]
    dom = subprocess.run([*chromium, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    import html as html_lib
    import re

    rendered = json.loads(html_lib.unescape(re.search(r'data-rendered="([^"]*)"', dom).group(1)))
    assert [s for s, _ in rendered["sections"]] == ["Iterations", "Accuracy (held-out data)", "Per layer and frontier",
                                                    "How it was made"]
    assert all(height > 0 for _, height in rendered["sections"])
    assert len(rendered["images"]) == 2
    assert all(w > 500 and h > 200 and 0 < shown <= rendered["page"] for w, h, shown in rendered["images"])

    shot = tmp_path / "report.png"
    subprocess.run([*chromium, f"--screenshot={shot}", (out / "report.html").as_uri()], capture_output=True, timeout=120)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    ink = (pixels < 0.9).any(axis=-1).mean()
    colour = (pixels.max(axis=-1) - pixels.min(axis=-1) > 0.3).mean()   # the bars and curves
    assert ink > 0.03 and colour > 0.005, (ink, colour)


def _edgeq() -> str:
    return str(Path(sys.executable).parent / "edgeq")


def test_killed_midway_the_rerun_recomputes_nothing_cached(tmp_path):
    """Kill -9 while the per-layer modules compile; the rerun compiles only what was not finished, a third run
    computes nothing. The job comes from edgeq.toml (the flags a CI would keep there), the target from a flag."""
    cache = tmp_path / "cache"
    env = {**os.environ, "EDGEQ_CACHE": str(cache)}
    (tmp_path / "edgeq.toml").write_text('model = "digits"\n[optimize]\nlatency-ms = 0.5\nbits = [4, 8]\n'
                                         'repetitions = 5\noutput = "out"\njobs = 2\n')
    argv = [_edgeq(), "optimize", "--target", "host", "--json"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    latency = cache / "latency"

    def compiled():
        return [d for d in latency.glob("*") if d.is_dir() and not d.name.endswith(".part")] if latency.exists() else []

    deadline = time.monotonic() + 600
    while len(compiled()) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = len(compiled())
    sens_cache = {p: p.stat().st_mtime_ns for p in (cache / "sensitivity").glob("*.json")}
    assert 3 <= done_at_kill < 12 and not list(latency.glob("*.json")) and len(sens_cache) == 1

    r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    work = json.loads(r.stdout)["work"]
    assert work["layer_modules_compiled"] == 12 - done_at_kill   # 7 layers, two of one shape, 2 bit-widths
    assert work["latency_entries_cached"] == 0 and work["latency_entries_measured"] == 12
    assert {p: p.stat().st_mtime_ns for p in (cache / "sensitivity").glob("*.json")} == sens_cache

    r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    again = json.loads(r.stdout)
    assert r.returncode == 0 and again["work"] == {"latency_entries_cached": 12, "latency_entries_measured": 0,
                                                   "layer_modules_compiled": 0, "iterations_reused": len(again["iterations"]),
                                                   "iterations_built": 0}


def test_an_impossible_budget_is_shown_impossible(tmp_path):
    out = tmp_path / "opt"
    r = runner.invoke(app, ["optimize", "digits", "--latency-ms", "0.000001", "--repetitions", "3", "--data-free",
                            "-o", str(out)])
    assert r.exit_code == 1
    report = json.loads((out / "report.json").read_text())
    assert not report["met"] and report["reason"].startswith("impossible: the fastest plan")
    assert len(report["iterations"]) == 1 and (out / "report.html").exists() and not (out / "plan.json").exists()
    assert "distilled" in json.loads((out / "sensitivity.json").read_text())["data"]


@pytest.mark.parametrize("target", ["arm64", "vulkan"])
def test_optimize_on_emulated_devices(target, tmp_path):
    """The loop on aarch64 under qemu (+dotprod,+i8mm) and on Vulkan through lavapipe: every layer and every whole
    module compiled for the target, timed there and checked bit-exact there. Neither time says anything about a
    phone or a GPU (emulation; a CPU rasterizer), so the budget is loose: this checks the loop, not the speed."""
    out = tmp_path / target
    r = runner.invoke(app, ["optimize", "digits", "--target", target, "--latency-ms", "1000", "--bits", "4,8",
                            "--size-mb", "0.015", "--repetitions", "3", "--quiet", "-o", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    assert report["met"] and report["target"] == target and all(it["bit_exact"] for it in report["iterations"])
    assert json.loads((out / "latency_table.json").read_text())["target"] == target
    manifest = json.loads((out / f"iter-{report['chosen']}" / "manifest.json").read_text())
    assert manifest["target"]["name"] == target
    assert ("+dotprod" in " ".join(manifest["flags"])) == (target == "arm64")
    assert max(it["size_mb"] for it in report["iterations"]) <= 0.015 + 1e-12
    assert set(report["iterations"][report["chosen"]]["plan"].values()) == {"w4a8", "w8a8"}


def test_ray_executor_builds_what_the_process_pool_builds(tmp_path, monkeypatch):
    """--executor ray on a local Ray cluster: the same cached modules, byte for byte, as the local process pool."""
    import torch
    from collections import Counter

    from edgeq.pipeline.latency import layer_latency_table
    from edgeq.quant import LayerSpec

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 6 * 6, 10))
    modules = {}
    for executor in ("local", "ray"):
        monkeypatch.setenv("EDGEQ_CACHE", str(tmp_path / executor))
        work = Counter()
        table = layer_latency_table(net, (1, 3, 6, 6), "host", [LayerSpec(8, 8)], repetitions=3, executor=executor,
                                    work=work)
        assert work == Counter(compiled=2, measured=2) and set(table.ms) == {"0", "3"}
        modules[executor] = {d.name: (d / "model.vmfb").read_bytes() for d in (tmp_path / executor / "latency").iterdir()
                             if d.is_dir()}
    assert modules["ray"] == modules["local"] and len(modules["ray"]) == 2


def test_measurements_never_overlap_on_one_device(tmp_path, monkeypatch):
    """Two measurements started together (threads here; processes alike) take turns on the device."""
    import threading

    from edgeq.pipeline import compile as driver
    from edgeq.targets import Measurement, get

    monkeypatch.setenv("EDGEQ_CACHE", str(tmp_path))
    spans = []

    class Slow:
        def measure(self, vmfb, inputs, repetitions):
            t0 = time.monotonic()
            time.sleep(0.3)
            spans.append((t0, time.monotonic()))
            return Measurement("host", [1.0])

    manifest = driver.Manifest("m", get("host").spec, {}, [], [], {}, [], [], {}, [], 0, {"vmfb": "m.vmfb"})
    monkeypatch.setattr(driver, "for_spec", lambda spec: Slow())
    artifact = driver.Artifact(tmp_path, manifest)
    threads = [threading.Thread(target=artifact.measure, args=([],)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a0, a1), (b0, b1) = sorted(spans)
    assert a1 <= b0
