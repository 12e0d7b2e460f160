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


@pytest.mark.parametrize("passes", [["edgeq-lower-requant"], ["edgeq-lower-requant", "edgeq-emulate-i64"]])
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
        assert fused.count("linalg.yield") == 1 and (" i64" not in fused) == ("edgeq-emulate-i64" in passes)
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


# Each i64 expression of (x, y, s) that edgeq-emulate-i64 rewrites: products with both words nonzero, wrap-around,
# carries and borrows, shifts by every amount 0..63, every compare predicate.
_I64_EXPRESSIONS = {
    "mul": "%p = arith.muli %a, %b : i64",
    "mul_wraps": "%p = arith.muli %ab, %uy : i64",
    "add": "%p = arith.addi %ab, %uy : i64",
    "sub": "%p = arith.subi %ab, %uy : i64",
    "shli": "%p = arith.shli %ab, %s64 : i64",
    "shrui": "%p = arith.shrui %ab, %s64 : i64",
    "shrsi": "%p = arith.shrsi %ab, %s64 : i64",
    "shrsi_const": "%c37 = arith.constant 37 : i64\n    %p = arith.shrsi %ab, %c37 : i64",
    "maxsi": "%p = arith.maxsi %ab, %uy : i64",
    "minsi": "%p = arith.minsi %ab, %uy : i64",
    **{f"cmp_{pred}": f"%c = arith.cmpi {pred}, %ab, %ba : i64\n    %p = arith.select %c, %ab, %uy : i64"
       for pred in ("eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge")},
}


def _i64_function(name: str, expr: str, n: int) -> str:
    """func @name(x, y, s : tensor<n x i32>) -> (low word, high word) of the expression, in one linalg.generic."""
    m = "affine_map<(d0) -> (d0)>"
    t = f"tensor<{n}xi32>"
    return f"""
func.func @{name}(%x: {t}, %y: {t}, %s: {t}) -> ({t}, {t}) {{
  %e = tensor.empty() : {t}
  %0:2 = linalg.generic {{indexing_maps = [{m}, {m}, {m}, {m}, {m}], iterator_types = ["parallel"]}}
      ins(%x, %y, %s : {t}, {t}, {t}) outs(%e, %e : {t}, {t}) {{
  ^bb0(%xi: i32, %yi: i32, %si: i32, %o0: i32, %o1: i32):
    %a = arith.extsi %xi : i32 to i64
    %b = arith.extsi %yi : i32 to i64
    %uy = arith.extui %yi : i32 to i64
    %s64 = arith.extui %si : i32 to i64
    %ab = arith.muli %a, %b : i64
    %ba = arith.addi %ab, %a : i64
    {expr}
    %c32 = arith.constant 32 : i64
    %high = arith.shrsi %p, %c32 : i64
    %w0 = arith.trunci %p : i64 to i32
    %w1 = arith.trunci %high : i64 to i32
    linalg.yield %w0, %w1 : i32, i32
  }} -> ({t}, {t})
  return %0#0, %0#1 : {t}, {t}
}}"""


def test_emulate_i64_matches_native_i64():
    """Differential: every expression compiled for this CPU with native i64 (LLVM) and after edgeq-emulate-i64
    (no i64 left), on i32 extremes and random values (log-uniform magnitudes, both signs) and every shift."""
    import numpy as np
    from iree import runtime
    from iree.compiler import compile_str

    from edgeq.dialect_passes._registry import run_pipeline

    n = 4096
    rng = np.random.default_rng(0)
    extremes = np.array([-2**31, 2**31 - 1, 0, -1, 1, 2**16, -2**16, 0xFFFF], dtype=np.int64)
    x, y = (np.where(rng.random(n) < 0.5, -1, 1) * np.exp2(rng.uniform(0, 31, n)).astype(np.int64)
            for _ in range(2))
    x[:64], y[:64] = np.repeat(extremes, 8), np.tile(extremes, 8)
    x, y = np.clip(x, -2**31, 2**31 - 1).astype(np.int32), np.clip(y, -2**31, 2**31 - 1).astype(np.int32)
    s = (np.arange(n) % 64).astype(np.int32)
    text = "".join(_i64_function(name, expr, n) for name, expr in _I64_EXPRESSIONS.items())
    emulated = run_pipeline(text, ["edgeq-emulate-i64"])
    assert " i64" not in emulated.replace("tensor<2xi64>", "")
    modules = [runtime.load_vm_flatbuffer(compile_str(t, target_backends=["llvm-cpu"],
                                                      extra_args=["--iree-llvmcpu-target-cpu=host"]),
                                          driver="local-task") for t in (text, emulated)]
    for name in _I64_EXPRESSIONS:
        native, emu = ([np.asarray(r) for r in getattr(m, name)(x, y, s)] for m in modules)
        assert len(set(native[0].tolist())) > 100, name        # not a trivial case
        for word, (a, b) in enumerate(zip(native, emu)):
            assert np.array_equal(a, b), (name, word, int((a != b).sum()))
