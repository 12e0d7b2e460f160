"""The edgeq command line: a thin shell over the library, verb for verb."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from edgeq.errors import EdgeqError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()


def _shape(text: Optional[str]) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise EdgeqError(f"input shape {text!r} is not a comma-separated list of integers", "write e.g. 1,3,224,224")


def _build(model_name: str, bits: str, target: str, out_dir: Path, input_shape: str | None, calibration: str):
    """Quantize, lower to integers, compile; save the reference input and output beside the module."""
    import torch

    from edgeq import models
    from edgeq.pipeline.compile import compile_model
    from edgeq.quant import Plan, quantize, to_integer

    plan = Plan.parse(bits)
    model = models.load(model_name, _shape(input_shape))
    integer = to_integer(quantize(model.module, plan, model.calibration, method=calibration), model.calibration[:1])
    artifact = compile_model(integer, model.calibration[:1], target, out_dir, model.name, plan.to_json())
    x = integer.quantize_input(model.calibration[:1])
    with torch.no_grad():
        y = integer.graph_module(x)
    np.save(out_dir / "reference_input.npy", x.numpy())
    np.save(out_dir / "reference_output.npy", y.numpy())
    plan.save(out_dir / "plan.json")
    return model, integer, artifact


@app.command("compile")
def compile_cmd(model: str = typer.Argument(..., help="zoo name (digits, resnet18, resnet50, mobilenet_v2) or FILE.py:FACTORY"),
                bits: str = typer.Option("w8a8", help="w8a8, w4a8, ... or a PLAN.json from `edgeq allocate`"),
                target: str = typer.Option("host", help="host | arm64 | arm64-android | vulkan"),
                output: Path = typer.Option(..., "-o", "--output", help="output directory"),
                input_shape: Optional[str] = typer.Option(None, help="e.g. 1,3,224,224 (default: the model's)"),
                calibration: str = typer.Option("minmax", help="minmax | percentile")):
    """Quantize MODEL and compile it for TARGET: writes the .vmfb, MLIR before/after edgeq's passes, manifest.json."""
    _, _, artifact = _build(model, bits, target, output, input_shape, calibration)
    console.print(f"compiled [bold]{model}[/] ({bits}) for [bold]{target}[/] -> {artifact.vmfb}")


@app.command()
def run(out_dir: Path = typer.Argument(..., help="a directory written by `edgeq compile`"),
        input: Optional[Path] = typer.Option(None, help="an int8 .npy input (default: the saved reference input)"),
        output: Optional[Path] = typer.Option(None, "-o", help="save the output .npy here")):
    """Run a compiled module on its target; with the reference input, check it bit-exact against the integer reference."""
    from edgeq.pipeline.compile import Artifact

    artifact = Artifact.load(out_dir)
    x = np.load(input or out_dir / "reference_input.npy")
    y = artifact.run([x])[0]
    if output:
        np.save(output, y)
    if input is None:
        ref = np.load(out_dir / "reference_output.npy")
        exact = y.shape == ref.shape and bool((y == ref).all())
        console.print(f"{artifact.manifest.target.name}: output {y.shape} {y.dtype}, "
                      f"bit-exact against the integer reference: {'yes' if exact else 'NO'}")
        if not exact:
            raise typer.Exit(1)
    else:
        console.print(y)


@app.command()
def measure(out_dir: Path = typer.Argument(..., help="a directory written by `edgeq compile`"),
            repetitions: int = typer.Option(20, min=1)):
    """Time a compiled module on its target: median and spread over repetitions."""
    from edgeq.pipeline.compile import Artifact

    artifact = Artifact.load(out_dir)
    m = artifact.measure([np.load(out_dir / "reference_input.npy")], repetitions)
    (out_dir / "measurement.json").write_text(json.dumps(m.to_json(), indent=2) + "\n")
    console.print(f"{m.target}: median {m.median_ms:.3f} ms (min {min(m.latencies_ms):.3f}, "
                  f"max {max(m.latencies_ms):.3f}, n={len(m.latencies_ms)}) {m.note}")


@app.command()
def demo(output: Path = typer.Option(Path("edgeq-demo"), "-o", "--output")):
    """digits, W8A8, host: quantize, compile, check bit-exact on the whole test split, accuracy and latency vs fp32."""
    import torch

    from edgeq.models.digits import accuracy

    model, integer, artifact = _build("digits", "w8a8", "host", output, None, "minmax")
    x_test, y_test = model.test_set
    q_test = integer.quantize_input(x_test)
    with torch.no_grad():
        fp32_logits = model.module(x_test)
        ref = integer.graph_module(q_test)
    q = q_test.numpy()
    compiled = np.concatenate([artifact.run([q[i:i + 1]])[0] for i in range(len(q))])
    exact = bool((compiled == ref.numpy()).all())
    int_acc = accuracy(integer.dequantize_output(torch.from_numpy(compiled)), y_test)
    m = artifact.measure([q[:1]], 50)
    t_fp32 = []
    with torch.no_grad():
        for _ in range(50):
            t0 = time.perf_counter()
            model.module(x_test[:1])
            t_fp32.append((time.perf_counter() - t0) * 1e3)
    table = Table(title=f"digits ResNet, {len(y_test)} held-out images")
    for col in ("", "accuracy %", "median latency ms (batch 1)"):
        table.add_column(col)
    table.add_row("torch fp32", f"{accuracy(fp32_logits, y_test):.2f}", f"{float(np.median(t_fp32)):.3f}")
    table.add_row("edgeq W8A8 on host", f"{int_acc:.2f}", f"{m.median_ms:.3f}")
    console.print(table)
    console.print(f"compiled module bit-exact against the integer reference on all {len(q)} images: "
                  f"{'yes' if exact else 'NO'}; artifacts in {output}/")
    if not exact:
        raise typer.Exit(1)


def main() -> None:
    try:
        app(standalone_mode=True)
    except EdgeqError as e:
        console.print(f"[red]error:[/] {e}")
        sys.exit(2)
