"""The CLI verbs, as a user runs them."""
import json
import shutil
import subprocess
import sys

from typer.testing import CliRunner

from edgeq.cli import app
from edgeq.errors import EdgeqError

runner = CliRunner()


def _text(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_compile_run_measure(tmp_path):
    out = tmp_path / "digits-host"
    r = runner.invoke(app, ["compile", "digits", "--bits", "w4a8", "--target", "host", "-o", str(out)])
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"]["name"] == "host" and manifest["bits"]["default"] == {"w_bits": 4, "a_bits": 8}
    assert manifest["inputs"] == [{"shape": [1, 1, 8, 8], "dtype": "int8"}] and manifest["versions"]["torch"].startswith("2.13.0")
    for key in ("vmfb", "before_passes", "after_passes", "torch_mlir"):
        assert (out / manifest["files"][key]).stat().st_size > 0
    r = runner.invoke(app, ["run", str(out)])
    assert r.exit_code == 0 and "bit-exact against the integer reference: yes" in r.output
    r = runner.invoke(app, ["measure", str(out), "--repetitions", "5"])
    assert r.exit_code == 0 and "median" in r.output
    assert len(json.loads((out / "measurement.json").read_text())["latencies_ms"]) == 5


def test_accel_sim_measure_shows_where_the_time_goes(tmp_path):
    """The simulated NPU from the command line: bit-exact through the host, the time per dispatch in a table and
    in simulation.json, adding up to the measured latency."""
    hw = tmp_path / "hw.toml"
    from edgeq.targets.accel_sim.hardware import DEFAULT

    hw.write_text(DEFAULT.read_text().replace("rows = 32", "rows = 16"))
    out = tmp_path / "sim"
    r = runner.invoke(app, ["compile", "digits", "--bits", "w4a8", "--target", "accel-sim", "--hw", str(hw), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "manifest.json").read_text())["target"]["hardware"]["rows"] == 16
    r = runner.invoke(app, ["run", str(out)])
    assert r.exit_code == 0 and "bit-exact against the integer reference: yes" in r.output
    r = runner.invoke(app, ["measure", str(out)])
    assert r.exit_code == 0 and "simulated on npu-32x32" in _text(r) and "conv1" in r.output
    sim = json.loads((out / "simulation.json").read_text())
    measured = json.loads((out / "measurement.json").read_text())
    assert sim["cycles"] == sum(d["cycles"] for d in sim["dispatches"])
    assert measured["median_ms"] == sim["latency_ms"] == sim["cycles"] / 800e3 and measured["energy_uj"] > 0


def test_plan_file_drives_bits(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"default": {"w_bits": 8, "a_bits": 8}, "layers": {"fc": {"w_bits": 2, "a_bits": 8}}}))
    out = tmp_path / "o"
    r = runner.invoke(app, ["compile", "digits", "--bits", str(plan), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "manifest.json").read_text())["bits"]["layers"]["fc"]["w_bits"] == 2


def test_errors_are_one_line_with_a_fix(tmp_path):
    cases = [(["compile", "digits", "--bits", "w9a8", "-o", str(tmp_path / "a")], "weight bit-width 9 is out of range"),
             (["compile", "nosuchnet", "-o", str(tmp_path / "b")], "unknown model 'nosuchnet'"),
             (["compile", "digits", "--target", "tpu", "-o", str(tmp_path / "c")], "unknown target 'tpu'"),
             (["run", str(tmp_path / "missing")], "not found"),
             (["compile", "digits", "--hw", str(tmp_path / "hw.toml"), "-o", str(tmp_path / "d")],
              "--hw describes the simulated accelerator, but the target is host"),
             (["compile", "digits", "--target", "accel-sim", "--hw", str(tmp_path / "hw.toml"), "-o", str(tmp_path / "e")],
              "hardware file"),
             (["measure", str(tmp_path / "missing")], "not found")]
    for argv, message in cases:
        r = runner.invoke(app, argv)
        assert isinstance(r.exception, EdgeqError) and message in str(r.exception) and "fix:" in str(r.exception)
    # the console script prints it as one line, no traceback
    p = subprocess.run([sys.executable, "-c", "import sys; from edgeq.cli import main; sys.argv=['edgeq','compile','digits','--bits','w1a8','-o','x']; main()"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout and "out of range" in p.stdout


def test_missing_qemu_is_named(monkeypatch):
    import edgeq.targets.base as base
    from edgeq.targets.arm64 import Arm64Target

    monkeypatch.setattr(base.shutil, "which", lambda name: None)
    try:
        Arm64Target().check_available()
    except EdgeqError as e:
        assert "qemu-aarch64" in str(e) and "apt-get install qemu-user" in str(e)
    else:
        raise AssertionError("no error for a missing qemu")


def test_import_edgeq_is_lean():
    code = "import sys, edgeq, edgeq.quant, edgeq.models; print('iree.compiler' in sys.modules, 'iree.runtime' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == ["False", "False"]


def test_sensitivity_allocate_compile(tmp_path):
    """The HAWQ-V3 loop by hand: sensitivity -> ILP plan under a size budget -> compiled, bit-exact module."""
    import numpy as np

    from edgeq import models
    from edgeq.sensitivity.table import Sensitivity

    m = models.load("digits")
    np.savez(tmp_path / "d.npz", x=m.calibration[:64].numpy(), y=m.labels[:64].numpy())
    sens, kl = tmp_path / "s.json", tmp_path / "kl.json"
    r = runner.invoke(app, ["sensitivity", "digits", "--data", str(tmp_path / "d.npz"), "--tol", "0.05", "-o", str(sens)])
    assert r.exit_code == 0, r.output
    table = Sensitivity.load(sens)
    assert table.method == "trace" and "64 samples" in table.data and "labels" in table.data
    r = runner.invoke(app, ["sensitivity", "digits", "--data-free", "--samples", "32", "--distill-iterations", "50",
                            "--method", "kl", "--quiet", "-o", str(kl)])
    assert r.exit_code == 0, r.output
    assert "32 ZeroQ distilled" in Sensitivity.load(kl).data
    plan = tmp_path / "plan.json"
    r = runner.invoke(app, ["allocate", str(sens), "--size-mb", "0.008", "--pin", "conv1=w8a8", "-o", str(plan),
                            "--plot", str(tmp_path / "f.png"), "--compare", str(kl)])
    assert r.exit_code == 0, r.output
    chosen = json.loads(plan.read_text())
    assert chosen["layers"]["conv1"] == {"w_bits": 8, "a_bits": 8}
    assert chosen["allocation"]["costs"]["size_mb"] <= 0.008
    assert {s["w_bits"] for s in chosen["layers"].values()} <= {2, 4, 8} and (tmp_path / "f.png").stat().st_size > 0
    out = tmp_path / "mixed"
    assert runner.invoke(app, ["compile", "digits", "--bits", str(plan), "-o", str(out)]).exit_code == 0
    r = runner.invoke(app, ["run", str(out)])
    assert r.exit_code == 0 and "bit-exact against the integer reference: yes" in r.output


def test_sensitivity_and_allocate_errors(tmp_path):
    import numpy as np

    np.save(tmp_path / "wrong.npy", np.zeros((4, 3, 8, 8), np.float32))
    (tmp_path / "s.json").write_text("[]")
    cases = [(["sensitivity", "digits", "--data", str(tmp_path / "wrong.npy"), "-o", "x"], "the model takes (1, 1, 8, 8)"),
             (["sensitivity", "digits", "--method", "fisher", "-o", "x"], "unknown sensitivity method"),
             (["allocate", str(tmp_path / "s.json"), "--size-mb", "1", "-o", "x"], "is corrupt"),
             (["allocate", str(tmp_path / "none.json"), "--size-mb", "1", "-o", "x"], "not found"),
             (["allocate", str(tmp_path / "s.json"), "--size-mb", "0", "-o", "x"], "must be positive"),
             (["allocate", str(tmp_path / "s.json"), "-o", "x"], "no budget given")]
    for argv, message in cases:
        r = runner.invoke(app, argv)
        assert isinstance(r.exception, EdgeqError) and message in str(r.exception), (argv, r.output)


def test_latency_table_resumes_and_feeds_a_latency_budget(tmp_path, monkeypatch):
    """Measured per-layer table -> ILP under a latency budget. A second run measures nothing; a corrupt entry is
    measured again."""
    from edgeq.allocate import LatencyTable

    monkeypatch.setenv("EDGEQ_CACHE", str(tmp_path / "cache"))
    table = tmp_path / "t.json"
    r = runner.invoke(app, ["latency-table", "digits", "--bits", "4,8", "--repetitions", "5", "-o", str(table)])
    assert r.exit_code == 0, r.output
    t = LatencyTable.load(table)
    assert set(t.ms) == {"conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.downsample.0", "layer2.0.conv1",
                         "layer2.0.conv2", "fc"} and all(set(row) == {"w4a8", "w8a8"} for row in t.ms.values())
    assert all(0 < v < 100 for row in t.ms.values() for v in row.values())
    assert json.loads(table.read_text())["spread"]["fc"]["w8a8"]["n"] == 5
    entries = sorted((tmp_path / "cache" / "latency").glob("*.json"))
    assert len(entries) == 12   # layer1.0.conv1 and conv2 have one shape: measured once

    argv = ["latency-table", "digits", "--bits", "4,8", "--repetitions", "5", "--jobs", "1"]
    r = runner.invoke(app, argv + ["-o", str(tmp_path / "t2.json")])
    assert r.exit_code == 0 and "12 entries from the cache, 0 measured, 0 modules compiled" in _text(r), r.output
    entries[0].write_text("{ torn")
    r = runner.invoke(app, argv + ["-o", str(tmp_path / "t3.json")])
    assert r.exit_code == 0 and "11 entries from the cache, 1 measured, 0 modules compiled" in _text(r), r.output
    shutil.rmtree(entries[1].with_suffix(""))   # its compiled module gone too: compiled again
    entries[1].unlink()
    r = runner.invoke(app, argv + ["-o", str(tmp_path / "t4.json")])
    assert r.exit_code == 0 and "11 entries from the cache, 1 measured, 1 modules compiled" in _text(r), r.output

    sens = tmp_path / "s.json"
    assert runner.invoke(app, ["sensitivity", "digits", "--tol", "0.05", "-o", str(sens)]).exit_code == 0
    budget = sum(min(row.values()) for row in t.ms.values()) * 1.02
    r = runner.invoke(app, ["allocate", str(sens), "--bits", "4,8", "--latency-ms", str(budget), "--latency-table",
                            str(table), "-o", str(tmp_path / "plan.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "plan.json").read_text())["allocation"]["costs"]["latency_ms"] <= budget


def test_config_file_holds_flags_and_flags_win(tmp_path, monkeypatch):
    """edgeq.toml: top-level keys for every command, [command] tables for one; the command line wins."""
    from edgeq.cli import _config_defaults
    import typer

    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["sensitivity", "digits", "--tol", "0.05", "--quiet", "-o", "s.json"]).exit_code == 0
    (tmp_path / "edgeq.toml").write_text('sens-path = "s.json"\n[allocate]\nsize-mb = 0.008\nbits = [2, 4]\n'
                                         'output = "plan.json"\npin = ["fc=w8a8"]\n')
    r = runner.invoke(app, ["allocate"])   # found in the working directory
    assert r.exit_code == 0, r.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["allocation"]["budget"]["size_mb"] == 0.008 and plan["layers"]["fc"] == {"w_bits": 8, "a_bits": 8}
    assert {v["w_bits"] for k, v in plan["layers"].items() if k != "fc"} <= {2, 4}
    r = runner.invoke(app, ["allocate", "--size-mb", "0.02", "--bits", "8", "--pin", "fc=w2a8"])
    assert r.exit_code == 0, r.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["allocation"]["budget"]["size_mb"] == 0.02 and plan["layers"]["fc"]["w_bits"] == 2
    assert all(v["w_bits"] == 8 for k, v in plan["layers"].items() if k != "fc")

    group = typer.main.get_command(app)
    assert _config_defaults(tmp_path / "edgeq.toml", group)["optimize"] == {}   # sens-path is allocate's alone
    for text, message in [("[allocat]\nbits = 2\n", "[allocat] is not an edgeq command"),
                          ("[optimize]\nlatency = 1\n", "[optimize] has no flag 'latency'"),
                          ("colour = 1\n", "'colour' is not a flag of any edgeq command"),
                          ("[optimize\n", "is not valid TOML")]:
        (tmp_path / "bad.toml").write_text(text)
        r = runner.invoke(app, ["--config", str(tmp_path / "bad.toml"), "allocate"])
        assert isinstance(r.exception, EdgeqError) and message in str(r.exception), (text, r.output)
