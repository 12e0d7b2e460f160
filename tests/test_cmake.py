"""The CMake/CTest matrix as an embedded team's CI runs it: configure, build every combination through edgeq's CLI,
run each module on its target under CTest (bit-exact), and rebuild only what changed. CI builds a small slice:
digits, one plan, every target."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BIN = Path(sys.prefix) / "bin"


def _run(*argv, cwd=None) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_matrix_builds_runs_bit_exact_and_rebuilds_only_what_changed(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"default": {"w_bits": 8, "a_bits": 8}, "layers": {"fc": {"w_bits": 4, "a_bits": 8}}}))
    build = tmp_path / "build"
    targets = ["host", "arm64-linux", "vulkan", "accel-sim", "arm64-android"]
    _run(BIN / "cmake", "-S", ROOT, "-B", build, "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={BIN / 'ninja'}",
         f"-DEDGEQ_EXECUTABLE={BIN / 'edgeq'}", "-DEDGEQ_MODELS=digits", f"-DEDGEQ_TARGETS={';'.join(targets)}",
         f"-DEDGEQ_BITS={plan}")
    first = _run(BIN / "cmake", "--build", build)
    assert first.count("edgeq: digits") == len(targets)
    for t in targets:
        manifest = json.loads((build / f"digits_{t.replace('-', '_')}_plan" / "manifest.json").read_text())
        assert manifest["target"]["name"] == t and manifest["bits"]["layers"]["fc"]["w_bits"] == 4
    tests = _run(BIN / "ctest", "--test-dir", build, "--output-on-failure")
    assert re.search(r"100% tests passed.* out of 4\b", tests)         # android: compile-checked, not run
    assert "no work to do" in _run(BIN / "cmake", "--build", build)
    plan.write_text(json.dumps({"default": {"w_bits": 8, "a_bits": 8}, "layers": {"fc": {"w_bits": 2, "a_bits": 8}}}))
    assert _run(BIN / "cmake", "--build", build).count("edgeq: digits") == len(targets)
    assert "100% tests passed" in _run(BIN / "ctest", "--test-dir", build, "-L", "accel-sim")
