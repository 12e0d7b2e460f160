"""`edgeq optimize` on digits for the host: the budget holds as measured, the run resumes, the impossible is said."""
import json

from typer.testing import CliRunner

from edgeq.cli import app

runner = CliRunner()


def test_optimize_meets_a_measured_budget_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "opt"
    argv = ["optimize", "digits", "--latency-ms", "0.5", "--repetitions", "5", "-o", str(out), "--quiet"]
    r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output
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
    r = runner.invoke(app, argv[:-1] + ["--json"])
    assert r.exit_code == 0, r.output
    again = json.loads(r.output[r.output.index("{"):])
    assert [it["measured_ms"] for it in again["iterations"]] == [it["measured_ms"] for it in report["iterations"]]


def test_an_impossible_budget_is_shown_impossible(tmp_path):
    out = tmp_path / "opt"
    r = runner.invoke(app, ["optimize", "digits", "--latency-ms", "0.000001", "--repetitions", "3", "--data-free",
                            "-o", str(out)])
    assert r.exit_code == 1
    report = json.loads((out / "report.json").read_text())
    assert not report["met"] and report["reason"].startswith("impossible: the fastest plan")
    assert len(report["iterations"]) == 1 and (out / "report.html").exists() and not (out / "plan.json").exists()
    assert "distilled" in json.loads((out / "sensitivity.json").read_text())["data"]
