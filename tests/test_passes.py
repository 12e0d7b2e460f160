"""edgeq's MLIR passes, tested the MLIR way: lit + FileCheck over tests/lit/*.mlir."""
import subprocess
import sys
from pathlib import Path


def test_lit_pass_tests():
    lit_dir = Path(__file__).parent / "lit"
    proc = subprocess.run([str(Path(sys.executable).parent / "lit"), "-v", str(lit_dir)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"Passed: {len(list(lit_dir.glob('*.mlir')))}" in proc.stdout
