"""The edgeq command line: a thin shell over the library, verb for verb."""
from __future__ import annotations

import json
import sys
from collections import Counter
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import click
import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgeq.errors import EdgeqError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()
CONFIG = "edgeq.toml"


def _config_defaults(path: Path, group: click.Group) -> dict[str, dict]:
    """edgeq.toml as click's default_map: top-level keys apply to every command that has such a flag,
    [command] tables to that command; flags on the command line win over both."""
    import tomllib

    try:
        raw = tomllib.loads(path.read_text())
    except OSError as e:
        raise EdgeqError(f"cannot read the config file {path}: {e.strerror}", "give an existing edgeq.toml") from None
    except tomllib.TOMLDecodeError as e:
        raise EdgeqError(f"the config file {path} is not valid TOML ({e})", "fix the line it names") from None
    commands = group.commands
    shared = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    unknown = [k for k, v in raw.items() if isinstance(v, dict) and k not in commands]
    if unknown:
        raise EdgeqError(f"{path}: [{unknown[0]}] is not an edgeq command", f"use one of {', '.join(sorted(commands))}")

    def names(cmd: click.Command) -> dict[str, click.Parameter]:
        return {o.lstrip("-").replace("-", "_"): p for p in cmd.params for o in [p.name, *p.opts] if o}

    for key in shared:
        if not any(key.replace("-", "_") in names(c) for c in commands.values()):
            raise EdgeqError(f"{path}: {key!r} is not a flag of any edgeq command", "check the spelling against --help")
    out: dict[str, dict] = {}
    for name, cmd in commands.items():
        params = names(cmd)
        section = {k.replace("-", "_"): v for k, v in raw.get(name, {}).items()}
        for key in section:
            if key not in params:
                raise EdgeqError(f"{path}: [{name}] has no flag {key!r}",
                                 f"use one of {', '.join(sorted(p.name.replace('_', '-') for p in cmd.params))}")
        values = {k.replace("-", "_"): v for k, v in shared.items() if k.replace("-", "_") in params} | section
        out[name] = {params[k].name: (",".join(map(str, v)) if isinstance(v, list) and not params[k].multiple else v)
                     for k, v in values.items()}
    return out


@app.callback()
def _main(ctx: typer.Context,
          config: Optional[Path] = typer.Option(None, "--config", help=f"a TOML file of flags (default: ./{CONFIG} "
                                                "if there is one); flags given on the command line win")):
    """Make a neural network small and fast on an edge device, and prove it there."""
    path = config or (Path(CONFIG) if Path(CONFIG).is_file() else None)
    if path is not None:
        ctx.default_map = _config_defaults(path, ctx.command)


def _shape(text: Optional[str]) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise EdgeqError(f"input shape {text!r} is not a comma-separated list of integers", "write e.g. 1,3,224,224")


def _target(target: str, hw: Path | None) -> str:
    """The target string the library takes: accel-sim with --hw is `accel-sim:HW.toml`."""
    if hw is None:
        return target
    if target != "accel-sim":
        raise EdgeqError(f"--hw describes the simulated accelerator, but the target is {target}",
                         "add --target accel-sim, or drop --hw")
    return f"accel-sim:{hw.resolve()}"


def _build(model_name: str, bits: str, target: str, out_dir: Path, input_shape: str | None, calibration: str,
           tune: bool = False):
    """Quantize, lower to integers, compile; save the reference input and output beside the module."""
    import torch

    from edgeq import models
    from edgeq.pipeline.compile import compile_model
    from edgeq.quant import Plan, quantize, to_integer

    plan = Plan.parse(bits)
    model = models.load(model_name, _shape(input_shape))
    integer = to_integer(quantize(model.module, plan, model.calibration, method=calibration), model.calibration[:1])
    artifact = compile_model(integer, model.calibration[:1], target, out_dir, model.name, plan.to_json(), tune=tune)
    x = integer.quantize_input(model.calibration[:1])
    with torch.no_grad():
        y = integer.graph_module(x)
    np.save(out_dir / "reference_input.npy", x.numpy())
    np.save(out_dir / "reference_output.npy", y.numpy())
    plan.save(out_dir / "plan.json")
    return model, integer, artifact


def _build_bert(bits: str, target: str, out_dir: Path, seq_len: int, groups: int, calibration: str,
                tune: bool = False):
    """MiniLM-L6: calibrate on the repo's paraphrase pairs, compile for seq_len tokens; a real sentence, padded,
    is the reference input (token ids and attention mask, int32)."""
    import torch

    from edgeq.models import sentence_pairs
    from edgeq.models.minilm import Tokenizer, minilm_l6
    from edgeq.pipeline.compile import compile_bert
    from edgeq.quant import Plan
    from edgeq.quant.transformer import BertQuantConfig, quantize_bert

    plan, tok = Plan.parse(bits), Tokenizer()
    texts = [p["a"] for p in sentence_pairs.calibration()]
    config = BertQuantConfig(groups=groups or None, method=calibration)
    q = quantize_bert(minilm_l6(), plan, [tok(texts[i:i + 32]) for i in (0, 32)], config)
    artifact = compile_bert(q, target, out_dir, seq_len, tune=tune)
    ids, mask = (t.to(torch.int32) for t in tok([texts[-1]], seq_len))
    with torch.no_grad():
        y = q(ids, mask)
    for i, x in enumerate((ids, mask)):
        np.save(out_dir / f"reference_input{i or ''}.npy", x.numpy())
    np.save(out_dir / "reference_output.npy", y.numpy())
    plan.save(out_dir / "plan.json")
    return artifact


@app.command("compile")
def compile_cmd(model: str = typer.Argument(..., help="zoo name (digits, resnet18, resnet50, mobilenet_v2, minilm-l6) "
                                                      "or FILE.py:FACTORY"),
                bits: str = typer.Option("w8a8", help="w8a8, w4a8, ... or a PLAN.json from `edgeq allocate`"),
                target: str = typer.Option("host", help="host | arm64 | arm64-dotprod | arm64-android | vulkan | accel-sim"),
                hw: Optional[Path] = typer.Option(None, "--hw", help="accel-sim: the hardware TOML (default: edgeq's npu.toml)"),
                output: Path = typer.Option(..., "-o", "--output", help="output directory"),
                input_shape: Optional[str] = typer.Option(None, help="e.g. 1,3,224,224 (default: the model's)"),
                calibration: Optional[str] = typer.Option(None, help="minmax | percentile (default: minmax; "
                                                                     "minilm-l6: percentile)"),
                seq_len: int = typer.Option(128, help="minilm-l6: the sequence length compiled for"),
                groups: int = typer.Option(12, help="minilm-l6: row groups per weight matrix (0: one per row)"),
                tune: bool = typer.Option(False, "--tune", help="time the target's flag sets on this model and keep "
                                                                 "the fastest (cached per model and machine)")):
    """Quantize MODEL and compile it for TARGET: writes the .vmfb, MLIR before/after edgeq's passes, manifest.json."""
    if model == "minilm-l6":
        artifact = _build_bert(bits, _target(target, hw), output, seq_len, groups, calibration or "percentile", tune)
    else:
        _, _, artifact = _build(model, bits, _target(target, hw), output, input_shape, calibration or "minmax", tune)
    if artifact.manifest.tuning:
        _print_tuning(artifact.manifest.tuning)
    console.print(f"compiled [bold]{model}[/] ({bits}) for [bold]{target}[/] -> {artifact.vmfb}")


def _print_tuning(tuning: dict) -> None:
    table = Table(title="flag sets timed on the target (median ms)")
    for col in ("flag set", "median ms", ""):
        table.add_column(col)
    for name, ms in sorted(tuning["median_ms"].items(), key=lambda kv: kv[1]):
        table.add_row(name, f"{ms:.3f}", "chosen" if name == tuning["winner"] else "")
    for name, why in tuning["dropped"].items():
        table.add_row(name, "-", escape(why))
    console.print(table)


@app.command()
def instructions(module_dir: Path = typer.Argument(..., help="a directory written by `edgeq compile`")):
    """Count the int8 dot-product instructions (sdot, smmla, vpdpbusd, ...) in a compiled CPU module's code."""
    from edgeq.pipeline.compile import STAGE_FILES, Artifact
    from edgeq.targets.instructions import DOT_PRODUCT, dot_product_counts

    manifest = Artifact.load(module_dir).manifest
    counts = dot_product_counts(module_dir / STAGE_FILES["after_passes"], manifest.flags, manifest.target)
    table = Table(title=f"{manifest.model} for {manifest.target.name} ({manifest.target.features or 'host CPU'}): "
                        "int8 dot-product instructions")
    for col in ("instruction", "count", "what it does"):
        table.add_column(col)
    for name, what in DOT_PRODUCT.items():
        if counts[name]:
            table.add_row(name, str(counts[name]), what)
    console.print(table if counts else "[yellow]no int8 dot-product instructions in this module[/]")


@app.command()
def run(out_dir: Path = typer.Argument(..., help="a directory written by `edgeq compile` or `edgeq import-tflite`"),
        input: Optional[Path] = typer.Option(None, help="an int8 .npy input (default: the saved reference input)"),
        output: Optional[Path] = typer.Option(None, "-o", help="save the output .npy here")):
    """Run a compiled module on its target; with the reference input, check it against the reference: bit-exact
    against the integer reference, or within the stated tolerance of LiteRT for an imported .tflite."""
    from edgeq.pipeline.compile import Artifact

    def saved(stem: str, n: int) -> list[np.ndarray]:   # reference_input.npy, reference_input1.npy, ...
        return [np.load(out_dir / f"{stem}{i or ''}.npy") for i in range(n)]

    artifact = Artifact.load(out_dir)
    ys = artifact.run([np.load(input)] if input else saved("reference_input", len(artifact.manifest.inputs)))
    if output:
        np.save(output, ys[0])
    if input is not None:
        console.print(ys[0])
        return
    refs = saved("reference_output", len(ys))
    name = artifact.manifest.target.name
    if artifact.manifest.reference == "tflite":
        from edgeq.tflite.importer import compare

        c = compare(ys, refs)
        console.print(f"{name}: {len(ys)} output(s), {c.summary()}")
        ok = c.ok
    else:
        ok = all(y.shape == r.shape and bool((y == r).all()) for y, r in zip(ys, refs))
        console.print(f"{name}: output {ys[0].shape} {ys[0].dtype}, "
                      f"bit-exact against the integer reference: {'yes' if ok else 'NO'}")
    if not ok:
        raise typer.Exit(1)


@app.command("export-tflite")
def export_tflite_cmd(model: str = typer.Argument(..., help="zoo name or FILE.py:FACTORY"),
                      bits: str = typer.Option("w8a8", help="w8a8, w4a8, ... or a PLAN.json (activations 8-bit)"),
                      output: Path = typer.Option(..., "-o", "--output", help="the .tflite file to write"),
                      input_shape: Optional[str] = typer.Option(None, help="e.g. 1,3,224,224 (default: the model's)"),
                      calibration: str = typer.Option("minmax", help="minmax | percentile")):
    """Quantize MODEL as `edgeq compile` does and write it as an int8 .tflite (NHWC) with the same weights and scales;
    report how LiteRT's outputs compare with edgeq's integer reference."""
    import torch

    from edgeq import models
    from edgeq.quant import Plan, quantize, to_integer
    from edgeq.tflite import TFLiteModel
    from edgeq.tflite.export import to_tflite

    m = models.load(model, _shape(input_shape))
    integer = to_integer(quantize(m.module, Plan.parse(bits), m.calibration, method=calibration), m.calibration[:1])
    to_tflite(integer, m.calibration[:1], m.calibration, output)
    xs = m.test_set[0] if m.test_set is not None else m.calibration
    tfl = TFLiteModel(output)
    scale, zp = tfl.outputs[0]["quantization"]
    agree = 0
    with torch.no_grad():
        for x in xs.split(1):
            x_i8 = integer.quantize_input(x)
            ref = integer.dequantize_output(integer.graph_module(x_i8)).flatten()
            got = (tfl.run([x_i8.permute(0, 2, 3, 1).numpy()])[0].astype(np.float64) - zp) * scale
            agree += int(ref.argmax() == got.argmax())
    console.print(f"wrote {output} ({output.stat().st_size / 1024:.1f} KiB); LiteRT's top-1 agrees with edgeq's "
                  f"integer reference on {agree}/{len(xs)} {'held-out' if m.test_set is not None else 'calibration'} "
                  "inputs")


@app.command("import-tflite")
def import_tflite_cmd(tflite: Path = typer.Argument(..., help="a .tflite model (float or int8)"),
                      target: str = typer.Option("host", help="host | arm64 | arm64-dotprod | arm64-android | vulkan | accel-sim"),
                      hw: Optional[Path] = typer.Option(None, "--hw", help="accel-sim: the hardware TOML"),
                      output: Path = typer.Option(..., "-o", "--output", help="output directory")):
    """Compile a .tflite model for TARGET through TOSA and IREE, run it there and compare it with LiteRT."""
    from edgeq.tflite.importer import import_tflite

    artifact, c = import_tflite(tflite, _target(target, hw), output)
    console.print(f"compiled {tflite.name} for [bold]{target}[/] -> {artifact.vmfb}; {c.summary()}")
    if not c.ok:
        raise typer.Exit(1)


@app.command()
def measure(out_dir: Path = typer.Argument(..., help="a directory written by `edgeq compile`"),
            repetitions: int = typer.Option(20, min=1)):
    """Time a compiled module on its target: median and spread over repetitions."""
    from edgeq.pipeline.compile import Artifact

    artifact = Artifact.load(out_dir)
    spec = artifact.manifest.target
    if spec.hardware is not None:   # accel-sim: simulated once, the measurement and where its time goes
        from edgeq.targets.accel_sim import simulate
        from edgeq.targets.accel_sim.hardware import HardwareModel

        sim = simulate(out_dir, HardwareModel.from_json(spec.hardware))
        m = sim.measurement()
        (out_dir / "simulation.json").write_text(json.dumps(sim.to_json(), indent=2) + "\n")
        out = Table(title=f"{artifact.manifest.model} on {sim.hardware} (simulated, {sim.clock_mhz:g} MHz)")
        for col in ("dispatch", "layer", "mode", "MMACs", "compute cyc", "memory cyc", "DRAM KB", "energy µJ"):
            out.add_column(col, justify="left" if col in ("dispatch", "layer") else "right")
        for d in sim.dispatches:
            out.add_row(d.name, d.layer or "", d.precision or "vector", f"{d.macs / 1e6:.3f}", str(d.compute_cycles),
                        str(d.memory_cycles), f"{d.dram_bytes / 1024:.1f}", f"{d.energy_pj / 1e6:.3f}")
        console.print(out)
    else:
        reference = out_dir / "reference_input.npy"
        inputs = ([np.load(reference)] if reference.exists() else   # a module built by the library: its signature
                  [np.zeros(i["shape"], i["dtype"]) for i in artifact.manifest.inputs])
        m = artifact.measure(inputs, repetitions)
    (out_dir / "measurement.json").write_text(json.dumps(m.to_json(), indent=2) + "\n")
    console.print(f"{m.target}: median {m.median_ms:.4g} ms (min {min(m.latencies_ms):.4g}, "
                  f"max {max(m.latencies_ms):.4g}, n={len(m.latencies_ms)}) {m.note}")


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise EdgeqError(f"{what} {text!r} is not a comma-separated list of integers", "write e.g. 2,4,8") from None


@contextmanager
def _progress(quiet: bool):
    """A rich progress bar; yields start(description, total) -> callback(done, total)."""
    if quiet:
        yield lambda description: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        def start(description: str):
            task = bar.add_task(description, total=None)
            return lambda done, total: bar.update(task, completed=done, total=total)
        yield start


@app.command("sensitivity")
def sensitivity_cmd(model: str = typer.Argument(..., help="zoo name or FILE.py:FACTORY"),
                    output: Path = typer.Option(..., "-o", "--output", help="the Sensitivity table (JSON)"),
                    method: str = typer.Option("trace", help="trace (HAWQ-V2) | eigen (HAWQ) | kl (ZeroQ)"),
                    data: Optional[Path] = typer.Option(None, help="x.npy or .npz with x (and y labels)"),
                    data_free: bool = typer.Option(False, "--data-free", help="ZeroQ data distilled from BatchNorm"),
                    samples: Optional[int] = typer.Option(None, help="inputs to use (distilled: 64 by default)"),
                    layers: Optional[str] = typer.Option(None, help="comma-separated layer names (default: all)"),
                    bits: str = typer.Option("2,3,4,5,6,7,8", help="bit-widths to compute Ω for"),
                    tol: Optional[float] = typer.Option(None, help="relative tolerance (trace 1e-2, eigen 1e-3)"),
                    max_steps: Optional[int] = typer.Option(None, help="probe cap (trace, 256) / iteration cap (eigen, 100)"),
                    distill_iterations: int = typer.Option(500, min=1),
                    seed: int = typer.Option(0),
                    input_shape: Optional[str] = typer.Option(None, help="e.g. 1,3,224,224 (default: the model's)"),
                    quiet: bool = typer.Option(False, "--quiet")):
    """Per-layer sensitivity of MODEL to quantization, with real data (default: the zoo's) or data-free."""
    import torch

    from edgeq import models, sensitivity

    if method not in ("trace", "eigen", "kl"):
        raise EdgeqError(f"unknown sensitivity method {method!r}", "use trace, eigen or kl")
    if data and data_free:
        raise EdgeqError("--data and --data-free both given", "give one of them")
    m = models.load(model, _shape(input_shape))
    with _progress(quiet) as start:
        if data_free:
            n = samples or 64
            x = sensitivity.distill(m.module, m.input_shape, n, distill_iterations,
                                    generator=torch.Generator().manual_seed(seed),
                                    progress=start(f"distilling {n} inputs (ZeroQ)"))
            y, note = None, f"{n} ZeroQ distilled inputs, {distill_iterations} iterations, seed {seed}"
        else:
            x, y = models.load_data(data, m.input_shape) if data else (m.calibration, m.labels)
            x, y = x[:samples], None if y is None else y[:samples]
            note = f"{len(x)} samples from {data or 'the zoo calibration set'}" + \
                (", labels (cross-entropy)" if y is not None else ", no labels (KL to fp32)")
        common = dict(name=m.name, layers=layers.split(",") if layers else None, bits=_ints(bits, "bits"),
                      data_note=note, progress=start(f"{method} sensitivity per block"))
        tuning = {k: v for k, v in dict(tol=tol, seed=seed).items() if v is not None}
        if method == "trace":
            sens = sensitivity.trace(m.module, x, y, **common, **tuning, **({"max_probes": max_steps} if max_steps else {}))
        elif method == "eigen":
            sens = sensitivity.eigen(m.module, x, y, **common, **tuning, **({"max_iter": max_steps} if max_steps else {}))
        else:
            sens = sensitivity.kl(m.module, x, **common)
    sens.save(output)
    if not quiet:
        table = Table(title=f"{m.name}: {method} sensitivity on {note}")
        for col in ("layer", "params", method, "s.e.", "Ω_w(4)", "Ω_w(8)", "Ω_a(8)"):
            table.add_column(col, justify="left" if col == "layer" else "right", no_wrap=True)
        for l in sens.layers:
            stat = ("", "") if l.stat_w is None else (f"{l.stat_w.value:.4g}", f"{l.stat_w.stderr:.2g}")
            table.add_row(l.name, str(l.n_params), *stat, *(f"{o.get(b, float('nan')):.3g}" for o, b in
                                                              ((l.omega_w, 4), (l.omega_w, 8), (l.omega_a, 8))))
        console.print(table)
    console.print(f"wrote {output} ({sens.seconds:.1f} s)")


def _pins(pins: list[str]):
    from edgeq.quant.plan import LayerSpec, Plan

    out = {}
    for p in pins:
        layer, _, tag = p.partition("=")
        if not tag:
            raise EdgeqError(f"--pin {p!r} is not LAYER=wXaY", "write e.g. --pin conv1=w8a8")
        out[layer] = Plan.uniform(tag).default
    return out


@app.command("allocate")
def allocate_cmd(sens_path: Path = typer.Argument(..., metavar="SENS.json", help="written by `edgeq sensitivity`"),
                 output: Path = typer.Option(..., "-o", "--output", help="plan.json, what `edgeq compile --bits` takes"),
                 size_mb: Optional[float] = typer.Option(None, help="model size budget, MB (10^6 bytes)"),
                 bops_g: Optional[float] = typer.Option(None, help="BOPs budget, 10^9 bit-operations per sample"),
                 latency_ms: Optional[float] = typer.Option(None, help="latency budget (needs --latency-table)"),
                 latency_table: Optional[Path] = typer.Option(None, help="per-layer latency table JSON"),
                 bits: str = typer.Option("2,4,8", help="candidate weight bit-widths"),
                 act_bits: str = typer.Option("8", help="candidate activation bit-widths"),
                 pin: list[str] = typer.Option([], help="LAYER=wXaY, kept as given (repeatable)"),
                 plot: Optional[Path] = typer.Option(None, help="PNG of the Pareto frontier with the chosen point"),
                 compare: Optional[Path] = typer.Option(None, help="another SENS.json (e.g. ZeroQ KL) to mark on the plot")):
    """Choose bits per layer by integer linear programming (HAWQ-V3) under size, BOPs and latency budgets."""
    from edgeq import allocate
    from edgeq.quant.plan import Plan
    from edgeq.sensitivity.table import Sensitivity

    try:
        budget = allocate.Budget(size_mb, bops_g, latency_ms)
    except ValueError as e:
        raise EdgeqError(str(e), "give budgets above zero") from None
    if not budget.limits():
        raise EdgeqError("no budget given", "give --size-mb, --bops-g and/or --latency-ms")
    sens = Sensitivity.load(sens_path)
    table = allocate.LatencyTable.load(latency_table) if latency_table else None
    options = dict(w_bits=_ints(bits, "bits"), a_bits=_ints(act_bits, "act-bits"), pinned=_pins(pin), latency=table)
    chosen = allocate.ilp(sens, budget, **options)
    chosen.save(output)
    out = Table(title=f"{sens.model}: bits by ILP on {sens.method} sensitivity")
    for col in ("layer", "bits", "Ω"):
        out.add_column(col)
    for l in sens.layers:
        spec = chosen.plan.spec(l.name)
        out.add_row(l.name, spec.tag, f"{l.omega(spec.w_bits, spec.a_bits):.3g}")
    console.print(out)
    c = chosen.costs
    console.print(f"total Ω {c.omega:.4g}, size {c.size_mb:.6g} MB, {c.bops_g:.6g} GBOPs"
                  + (f", latency {c.latency_ms:.4g} ms" if c.latency_ms is not None else "") + f" -> {output}")
    if plot:
        resource = next(iter(budget.limits()))
        top_a = max(options["a_bits"])
        marks = {f"uniform W{w}A{top_a}": allocate.costs(sens, Plan.uniform(f"w{w}a{top_a}"), table)
                 for w in options["w_bits"]}
        if compare:
            other = Sensitivity.load(compare)
            label = {"kl": "ZeroQ KL", "trace": "HAWQ-V2 trace", "eigen": "HAWQ eigenvalue"}[other.method]
            marks[f"{label}{' (data-free)' if 'distilled' in other.data else ''} choice"] = allocate.costs(
                sens, allocate.ilp(other, budget, **options).plan, table)
        allocate.plot(allocate.frontier(sens, resource, **options, fixed=budget), resource, plot, chosen=chosen,
                      marks=marks, title=f"{sens.model}: Pareto frontier of {sens.method} Ω")
        console.print(f"frontier plot -> {plot}")


@app.command("latency-table")
def latency_table_cmd(model: str = typer.Argument(..., help="zoo name or FILE.py:FACTORY"),
                      output: Path = typer.Option(..., "-o", "--output", help="the table (JSON) `allocate` reads"),
                      target: str = typer.Option("host", help="host | arm64 | vulkan | accel-sim"),
                      hw: Optional[Path] = typer.Option(None, "--hw", help="accel-sim: the hardware TOML (default: edgeq's npu.toml)"),
                      bits: str = typer.Option("2,4,8", help="candidate weight bit-widths"),
                      act_bits: str = typer.Option("8", help="candidate activation bit-widths"),
                      repetitions: int = typer.Option(20, min=1),
                      jobs: int = typer.Option(2, min=1, help="parallel compiles (measurement is always serial)"),
                      executor: str = typer.Option("local", help="local (process pool) | ray ($RAY_ADDRESS, else a local cluster)"),
                      input_shape: Optional[str] = typer.Option(None, help="e.g. 1,3,224,224 (default: the model's)"),
                      quiet: bool = typer.Option(False, "--quiet")):
    """Compile every layer alone at every candidate bit-width for TARGET and time it there (cached, resumable)."""
    import itertools

    from edgeq import models
    from edgeq.pipeline.latency import layer_latency_table
    from edgeq.quant.plan import LayerSpec

    m = models.load(model, _shape(input_shape))
    target = _target(target, hw)
    specs = [LayerSpec(w, a) for w, a in itertools.product(_ints(bits, "bits"), _ints(act_bits, "act-bits"))]
    work = Counter()
    with _progress(quiet) as start:
        table = layer_latency_table(m.module, m.input_shape, target, specs, repetitions=repetitions, jobs=jobs,
                                    executor=executor, progress=start(f"layer latencies on {target}"), work=work)
    table.save(output)
    out = Table(title=f"{m.name} on {target}: median ms per layer (batch 1, {repetitions} repetitions)")
    out.add_column("layer")
    for s in specs:
        out.add_column(s.tag, justify="right")
    for layer, row in table.ms.items():
        out.add_row(layer, *(f"{row[s.tag]:.4f}" for s in specs))
    if not quiet:
        console.print(out)
    console.print(f"wrote {output}: {work['cached']} entries from the cache, {work['measured']} measured, "
                  f"{work['compiled']} modules compiled")


@app.command()
def optimize(model: str = typer.Argument(..., help="zoo name or FILE.py:FACTORY"),
             latency_ms: float = typer.Option(..., help="the budget, measured end to end on the target"),
             output: Path = typer.Option(..., "-o", "--output", help="output directory"),
             target: str = typer.Option("host", help="host | arm64 | vulkan | accel-sim"),
             hw: Optional[Path] = typer.Option(None, "--hw", help="accel-sim: the hardware TOML (default: edgeq's npu.toml)"),
             size_mb: Optional[float] = typer.Option(None, help="model size budget, MB"),
             data: Optional[Path] = typer.Option(None, help="x.npy or .npz with x (and y labels)"),
             data_free: bool = typer.Option(False, "--data-free", help="ZeroQ data distilled from BatchNorm"),
             bits: str = typer.Option("2,4,8", help="candidate weight bit-widths"),
             act_bits: str = typer.Option("8", help="candidate activation bit-widths"),
             max_iterations: int = typer.Option(6, min=1),
             repetitions: int = typer.Option(20, min=3),
             jobs: int = typer.Option(2, min=1, help="parallel compiles"),
             executor: str = typer.Option("local", help="local (process pool) | ray ($RAY_ADDRESS, else a local cluster)"),
             quiet: bool = typer.Option(False, "--quiet"),
             as_json: bool = typer.Option(False, "--json", help="print report.json to stdout")):
    """Sensitivity -> measured per-layer latency -> ILP -> compile, check, measure; correct and repeat until the
    budget holds on TARGET. Writes model.vmfb, plan.json, latency_table.json, report.json and report.html."""
    from edgeq import models
    from edgeq.pipeline.optimize import optimize as run_loop

    if data and data_free:
        raise EdgeqError("--data and --data-free both given", "give one of them")
    m = models.load(model)
    target = _target(target, hw)
    with _progress(quiet or as_json) as start:
        result = run_loop(m, target, latency_ms, output, size_mb=size_mb,
                          data=models.load_data(data, m.input_shape) if data else None, data_free=data_free,
                          w_bits=_ints(bits, "bits"), a_bits=_ints(act_bits, "act-bits"),
                          max_iterations=max_iterations, repetitions=repetitions, jobs=jobs, executor=executor,
                          start=start)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    elif not quiet:
        out = Table(title=f"{m.name} on {target}, budget {latency_ms} ms")
        for col in ("iter", "predicted ms", "measured ms", "bit-exact", "Ω", "bits used"):
            out.add_column(col, justify="right")
        for it in result.iterations:
            out.add_row(str(it.index) + (" *" if it.index == result.chosen else ""), f"{it.predicted_ms:.4g}",
                        f"{it.measured_ms:.4g}", "yes" if it.bit_exact else "NO", f"{it.omega:.3g}",
                        " ".join(sorted(set(it.plan.values()))))
        console.print(out)
        console.print(f"{'met' if result.met else 'NOT met'}: {result.reason}. Report: {output / 'report.html'}")
    if not result.met:
        raise typer.Exit(1)


@app.command()
def demo(output: Path = typer.Option(Path("edgeq-demo"), "-o", "--output"),
         quiet: bool = typer.Option(False, "--quiet")):
    """The whole loop on the digits ResNet for this CPU: as fast as torch fp32 runs it, in half the W8 size.

    Sensitivity, per-layer latency measured here, ILP, compile, bit-exact check, measurement, correction;
    then accuracy and latency against fp32, and where the report is."""
    import torch

    from edgeq import allocate, models, sensitivity
    from edgeq.pipeline.optimize import optimize as run_loop
    from edgeq.quant import Plan

    m = models.load("digits")
    with torch.no_grad():
        x = m.calibration[:1]
        for _ in range(10):
            m.module(x)
        t_fp32 = []
        for _ in range(100):
            t0 = time.perf_counter()
            m.module(x)
            t_fp32.append((time.perf_counter() - t0) * 1e3)
    fp32_ms = float(np.median(t_fp32))
    sens = sensitivity.trace(m.module, m.calibration, m.labels, name=m.name)
    w8_mb = allocate.costs(sens, Plan.uniform("w8a8")).size_mb
    fp32_mb = sum(4 * (l.n_params + l.n_bias) for l in sens.layers) / 1e6
    n_test = len(m.test_set[0])
    with _progress(quiet) as start:
        result = run_loop(m, "host", fp32_ms, output, size_mb=w8_mb / 2, check_inputs=n_test, start=start)
    table = Table(title=f"digits ResNet on this CPU, batch 1; budgets {fp32_ms:.3f} ms (torch fp32) "
                        f"and {w8_mb / 2 * 1e3:.2f} KB (half of W8)")
    for col in ("", "accuracy %", "median latency ms", "weights KB", "bits"):
        table.add_column(col)
    table.add_row("torch fp32", f"{result.accuracy.get('fp32', float('nan')):.2f}", f"{fp32_ms:.3f}",
                  f"{fp32_mb * 1e3:.2f}", "fp32")
    if result.met:
        it = result.iterations[result.chosen]
        table.add_row("edgeq on host", f"{result.accuracy['quantized']:.2f}", f"{it.measured_ms:.3f}",
                      f"{it.size_mb * 1e3:.2f}", " ".join(sorted(set(it.plan.values()))))
    console.print(table)
    console.print(f"{'met' if result.met else 'NOT met'} in {len(result.iterations)} iteration(s), every module "
                  f"bit-exact on all {n_test} held-out images; report: {output / 'report.html'}")
    if not result.met:
        raise typer.Exit(1)


def main() -> None:
    try:
        app(standalone_mode=True)
    except EdgeqError as e:
        console.print(f"[red]error:[/] {escape(str(e))}")
        sys.exit(2)
