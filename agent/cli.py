"""The ``fer-agent`` command line: a thin click layer over library calls.

Library errors (:class:`FerAgentError`) become one line on stderr and exit code 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from importlib import metadata
from pathlib import Path

import click

from agent.errors import FerAgentError
from agent.paths import default_emotion_model, model_card_for

log = logging.getLogger("agent")


class FerAgentGroup(click.Group):
    """Turns library errors into one clear line, unless --debug asks for the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FerAgentError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {error}", err=True)
            sys.exit(1)


def _version() -> str:
    try:
        return metadata.version("fer-agent")
    except metadata.PackageNotFoundError:
        return "unknown"


@click.group(cls=FerAgentGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logging.")
@click.version_option(_version(), prog_name="fer-agent")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """fer-agent: how is my live video class doing? Facial-expression analysis of a participant gallery."""
    ctx.obj = {"debug": debug}
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _require_training_extra() -> None:
    """Training and export need PyTorch, which the runtime does not install: say how to get it."""
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise FerAgentError(
            f"this command needs the training extra ({error.name or error} is missing): "
            "pip install 'fer-agent[train]' (with the CPU build of torch, see the README)"
        ) from error


def _parse_blocks(_ctx: click.Context, _param: click.Parameter, value: str) -> list[int]:
    try:
        blocks = [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated whole numbers such as 1,1,2, got {value!r}") from None
    if not blocks or min(blocks) < 1:
        raise click.BadParameter(f"expected one or more numbers >= 1, got {value!r}")
    return blocks


@main.command()
@click.option("--data", required=True, type=click.Path(exists=True),
              help="FER-2013 folder (fer2013.csv[.gz], fer2013new.csv beside it is used), CSV file, or "
                   "<split>/<class>/ image tree.")
@click.option("--ferplus", type=click.Path(exists=True, dir_okay=False),
              help="FER+ votes file (fer2013new.csv) when it is not beside the FER-2013 file.")
@click.option("--out-dir", default="runs/emotion", show_default=True, type=click.Path(file_okay=False),
              help="Where checkpoints go (last.pt every epoch, best.pt by PublicTest accuracy).")
@click.option("--targets", type=click.Choice(["ferplus", "fer2013"]), default="ferplus", show_default=True,
              help="Train on FER+ vote distributions or on the original single FER-2013 labels.")
@click.option("--epochs", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=0.1, show_default=True, type=float, help="Peak learning rate of the one-cycle schedule.")
@click.option("--weight-decay", default=5e-4, show_default=True, type=float)
@click.option("--label-smoothing", default=0.0, show_default=True, type=click.FloatRange(0, 1))
@click.option("--class-weighting", type=click.Choice(["none", "sqrt", "inverse"]), default="none",
              show_default=True, help="Weight the loss by inverse (or inverse square root) class frequency.")
@click.option("--width", default=16, show_default=True, type=click.IntRange(min=1),
              help="Channels of the first stage (doubled at each later stage).")
@click.option("--blocks", default="1,1,2", show_default=True, callback=_parse_blocks,
              help="Residual blocks per stage, comma-separated.")
@click.option("--dropout", default=0.3, show_default=True, type=click.FloatRange(0, 1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N faces of each split (quick runs).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, cuda:N.")
@click.option("--resume", is_flag=True, help="Continue from last.pt in --out-dir.")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False),
              help="After training, export the best checkpoint to this ONNX file (with its model card).")
def train(resume: bool, onnx_path: str | None, **options) -> None:
    """Train the emotion CNN on FER-2013 (FER+ vote distributions by default)."""
    _require_training_extra()
    from training.train import BEST_CHECKPOINT, TrainConfig
    from training.train import train as run_training

    config = TrainConfig(**options)
    try:
        history = run_training(config, resume=resume)
    except KeyboardInterrupt:
        click.echo(f"interrupted; the last finished epoch is saved: continue with the same options and --resume",
                   err=True)
        sys.exit(130)
    best = max(history, key=lambda record: record.val_accuracy)
    click.echo(f"best PublicTest accuracy {best.val_accuracy:.4f} at epoch {best.epoch}; "
               f"checkpoints in {config.out_dir}")
    if onnx_path:
        from training.export import export_onnx

        export_onnx(Path(config.out_dir) / BEST_CHECKPOINT, onnx_path, version=_version())
        click.echo(f"exported {onnx_path} and {model_card_for(Path(onnx_path))}")


@main.command("export-model")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default=str(default_emotion_model()), show_default=True,
              type=click.Path(dir_okay=False), help="ONNX file to write; the model card goes beside it (.json).")
@click.option("--model-version", default=_version(), show_default=True, help="Written into the ONNX metadata.")
def export_model(checkpoint: str, output: str, model_version: str) -> None:
    """Export a training checkpoint to ONNX (raw 0..255 grey input, softmax output) with its model card."""
    _require_training_extra()
    from training.export import export_onnx

    card = export_onnx(checkpoint, output, version=model_version)
    click.echo(f"exported {output} ({card['file_size_bytes'] / 1e6:.2f} MB, {card['parameters']:,} parameters) "
               f"and {model_card_for(Path(output))}")


@main.command()
@click.option("--model", "model_path", default=str(default_emotion_model()), show_default=True,
              type=click.Path(dir_okay=False), help="ONNX emotion model.")
@click.option("--data", required=True, type=click.Path(exists=True),
              help="FER-2013 folder or CSV file (FER+ votes attached when fer2013new.csv is beside it), or "
                   "<split>/<class>/ image tree.")
@click.option("--ferplus", type=click.Path(exists=True, dir_okay=False), help="FER+ votes file, if not beside.")
@click.option("--split", type=click.Choice(["PrivateTest", "PublicTest", "Training"]), default="PrivateTest",
              show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N faces of the split.")
@click.option("--confusion", type=click.Path(dir_okay=False), help="Save the confusion matrix as an image (PNG/SVG).")
@click.option("--card", type=click.Path(exists=True, dir_okay=False),
              help="Write the metrics into this model card under metrics.<split>.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path: str, data: str, ferplus: str | None, split: str, limit: int | None,
             confusion: str | None, card: str | None, as_json: bool) -> None:
    """Evaluate an emotion model on a split: FER+ majority-vote accuracy, FER-2013-label accuracy, macro-F1,
    per-class precision and recall, confusion matrix."""
    from agent.classifier import EmotionClassifier
    from training.card import record_evaluation
    from training.data import load_dataset
    from training.evaluate import evaluate as score
    from training.evaluate import predict_dataset, save_confusion_matrix

    classifier = EmotionClassifier(model_path, threads=0)
    dataset = load_dataset(data, ferplus=ferplus).split(split)
    if limit is not None:
        dataset = dataset.subset(slice(0, limit))
    result = score(predict_dataset(classifier, dataset), dataset, split)
    if confusion:
        save_confusion_matrix(result, confusion, f"{Path(model_path).name} on {split} ({result.reference})")
    if card:
        record_evaluation(card, result)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    _print_evaluation(result)


def _print_evaluation(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if result.ferplus_accuracy is not None:
        console.print(f"FER+ majority-vote accuracy: [bold]{result.ferplus_accuracy:.4f}[/] "
                      f"({result.reference_faces} of {result.faces} {result.split} faces have a majority)")
    console.print(f"FER-2013-label accuracy:     [bold]{result.fer2013_accuracy:.4f}[/] ({result.faces} faces)")
    console.print(f"macro-F1 ({result.reference}): {result.macro_f1:.4f}")
    table = Table("emotion", "precision", "recall", "faces", title=f"per class, against {result.reference}")
    for index, (name, precision) in enumerate(result.precision.items()):
        table.add_row(name, f"{precision:.3f}", f"{result.recall[name]:.3f}", str(sum(result.confusion[index])))
    console.print(table)
