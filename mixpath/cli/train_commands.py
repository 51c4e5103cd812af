"""``mixpath spaces`` and ``mixpath train``."""

from __future__ import annotations

from pathlib import Path

import typer

from mixpath import distributed
from mixpath.cli import app
from mixpath.errors import MixPathError
from mixpath.spaces import list_spaces
from mixpath.training import TrainConfig, train_supernet


@app.command()
def spaces(m: list[int] = typer.Option([1, 4], "--m", help="Path limits to count architectures for.")) -> None:
    """List the registered search spaces with their sizes (number of architectures for each m)."""
    header = "space".ljust(24) + "layers  " + "".join(f"{'m=' + str(k):>12}" for k in m) + "  description"
    typer.echo(header)
    for space in list_spaces():
        sizes = "".join(f"{space.size(min(k, space.max_m())):>12.3g}" for k in m)
        typer.echo(f"{space.name:<24}{space.n_layers:>6}  {sizes}  {space.description}")


@app.command()
def train(
    run: Path = typer.Option(None, "--run", help="Run folder (default runs/SPACE-STRATEGY-mM-POLICY-sSEED)."),
    space: str = typer.Option("fmnist-s1", help="Search space (see `mixpath spaces`)."),
    data: str = typer.Option("fashion-mnist", help="Dataset: fashion-mnist, digits or cifar10."),
    data_dir: str = typer.Option(None, help="Folder holding the dataset files (default: standard places)."),
    strategy: str = typer.Option("mixpath", help="Training strategy: mixpath, spos or fairnas."),
    m: int = typer.Option(None, help="Most paths per layer (default 4 for mixpath, 1 for spos and fairnas)."),
    bn_policy: str = typer.Option("shadow", help="BN after summed paths: shadow, shared, exponential or scaled."),
    epochs: int = typer.Option(1),
    batch_size: int = typer.Option(96),
    lr: float = typer.Option(0.025),
    warmup_epochs: float = typer.Option(0.0, help="Linear learning-rate warm-up over this many epochs."),
    weight_decay: float = typer.Option(3e-4),
    grad_clip: float = typer.Option(5.0),
    label_smoothing: float = typer.Option(0.0),
    seed: int = typer.Option(0),
    train_subset: int = typer.Option(None, help="Train on only this many training images (fast experiments)."),
    checkpoint_every: int = typer.Option(0, help="Also checkpoint every N steps within an epoch."),
    amp: str = typer.Option("off", help="Mixed precision: off, bf16 or fp16 (fp16 needs CUDA)."),
    micro_batches: int = typer.Option(1, help="Split each (per-process) batch into this many BN batches."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run with its saved settings."),
) -> None:
    """Train a one-shot supernet."""
    m = m if m is not None else (4 if strategy == "mixpath" else 1)
    if run is None:
        if resume:
            raise MixPathError("--resume needs the --run folder to continue")
        run = Path("runs") / f"{space}-{strategy}-m{m}-{bn_policy}-s{seed}"
    config = None
    if not resume:
        config = TrainConfig(
            space=space,
            data=data,
            data_dir=data_dir,
            strategy=strategy,
            m=m,
            bn_policy=bn_policy,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            warmup_epochs=warmup_epochs,
            weight_decay=weight_decay,
            grad_clip=grad_clip,
            label_smoothing=label_smoothing,
            seed=seed,
            train_subset=train_subset,
            checkpoint_every=checkpoint_every,
            amp=amp,
            micro_batches=micro_batches,
        )
    result = train_supernet(config, run, resume=resume, device=device)
    if not distributed.is_main():
        return
    last = result.last
    typer.echo(
        f"trained {run}: epoch {last.get('epoch')}, train loss {last.get('train_loss')}, "
        f"val acc of sampled archs {last.get('val_acc_sampled')}%, {last.get('images_per_s')} img/s"
    )
