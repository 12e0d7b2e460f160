"""edgeq's MLIR passes, tested the MLIR way: lit + FileCheck over tests/lit/*.mlir."""
import subprocess
import sys
from pathlib import Path

import pytest


def test_lit_pass_tests():
    lit_dir = Path(__file__).parent / "lit"
    proc = subprocess.run([str(Path(sys.executable).parent / "lit"), "-v", str(lit_dir)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"Passed: {len(list(lit_dir.glob('*.mlir')))}" in proc.stdout


def _requant_chain(round_: int, shift: int, zp: int, lo: int, hi: int) -> str:
    """The chain torch exports (tests/lit/lower_requant.mlir's @requant) with other constants, on a 1-D tensor."""
    text = (Path(__file__).parent / "lit" / "lower_requant.mlir").read_text()
    start = text.index("\nfunc.func @requant(") + 1
    body = text[start:text.index("}\n", text.index("return %6")) + 2]
    for old, new in (("137438953472 : i64", f"{round_} : i64"), ("38 : i64", f"{shift} : i64"),
                     ("%zp = arith.constant -128", f"%zp = arith.constant {zp}"),
                     ("%lo = arith.constant -128", f"%lo = arith.constant {lo}"),
                     ("%hi = arith.constant 127", f"%hi = arith.constant {hi}")):
        assert old in body
        body = body.replace(old, new)
    return text[:text.index("// clamp")] + body


@pytest.mark.parametrize("passes", [["edgeq-lower-requant"], ["edgeq-lower-requant-i32"]])
def test_requant_lowerings_are_exact_at_the_extremes(passes):
    """Both lowerings compiled for this CPU against Python's integers: accumulators over the whole i32 range
    (the extremes included), multipliers up to 2^31 - 1, shifts on both sides of 32 (the i32-only form takes
    other paths for c < 32, c = 32 and c > 32), signed and unsigned output ranges."""
    import numpy as np
    from iree import runtime
    from iree.compiler import compile_str

    from edgeq.dialect_passes._registry import run_pipeline

    rng = np.random.default_rng(0)

    def log_uniform(size, top):   # every magnitude equally likely, so some products land inside the range
        return np.minimum(np.exp2(rng.uniform(0, top, size)).astype(np.int64), 2**top - 1)

    for shift, (zp, lo, hi) in [(20, (0, -128, 127)), (31, (-128, -128, 127)), (32, (0, -8, 7)),
                                (33, (-128, -128, 127)), (38, (-128, -128, 127)), (45, (0, -128, 127))]:
        lowered = run_pipeline(_requant_chain(1 << (shift - 1), shift, zp, lo, hi), passes)
        fused = lowered[lowered.rindex("linalg.generic"):]
        assert fused.count("linalg.yield") == 1 and (" i64" not in fused) == (passes == ["edgeq-lower-requant-i32"])
        vmfb = compile_str(lowered, target_backends=["llvm-cpu"], extra_args=["--iree-llvmcpu-target-cpu=host"])
        module = runtime.load_vm_flatbuffer(vmfb, driver="local-task")
        inside = 0
        for draw in range(20):
            acc = log_uniform((1, 8, 4, 4), 31) * rng.choice([-1, 1], (1, 8, 4, 4))
            b = log_uniform((8, 1, 1), 31)
            if draw == 0:
                acc.flat[:6] = [-2**31, 2**31 - 1, 0, -1, 1, -2**30]
                b.flat[:2] = [2**31 - 1, 1]
            exact = [((int(a) * int(m) + (1 << (shift - 1))) >> shift) + zp
                     for a, m in zip(acc.flat, np.broadcast_to(b.reshape(1, 8, 1, 1), acc.shape).flat)]
            inside += sum(lo < v < hi for v in exact)
            expect = np.clip(np.array(exact, dtype=object), lo, hi).astype(np.int64).astype(np.int8).reshape(acc.shape)
            out = np.asarray(module.requant(acc.astype(np.int32), b))
            assert np.array_equal(out, expect), (shift, draw, int((out != expect).sum()))
        assert inside >= 100, (shift, inside)   # not only saturation was checked
