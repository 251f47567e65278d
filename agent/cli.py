"""The ``fer-agent`` command line: a thin click layer over library calls.

Library errors (:class:`FerAgentError`) become one line on stderr and exit code 1; so does an error nobody expected (a
bug), as one line that says so; ``--debug`` shows the traceback. Numeric options refuse nan and infinities as usage
errors (exit code 2).
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import logging
import math
import sys
from collections import Counter
from pathlib import Path

import click

from fer_agent import installed_version
from fer_agent.errors import FerAgentError, unexpected_error
from fer_agent.paths import default_emotion_model, model_card_for, model_test_accuracy
from fer_agent.vision.detector_model import BLAZEFACE, CENTERFACE, TEXT_DETECTOR, TEXT_RECOGNIZER

log = logging.getLogger("fer_agent")


class FerAgentGroup(click.Group):
    """Turns library errors into one clear line, and any other error (a bug) into one line that says so, unless --debug
    asks for the traceback; usage errors are one line too (click's own take four). ``--debug`` may come anywhere on
    the command line (``fer-agent start --debug`` as well as ``fer-agent --debug start``)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[1:end]:
            args.remove("--debug")
            args.insert(0, "--debug")
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as error:
            click.echo(error.ctx.get_help(), err=True)
            sys.exit(error.exit_code)
        except click.exceptions.UsageError as error:
            command = error.ctx.command_path if error.ctx else "fer-agent"
            click.echo(f"error: {' '.join(error.format_message().split())} (see `{command} --help`)", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"error: {' '.join(error.format_message().split())}", err=True)
            sys.exit(error.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FerAgentError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise  # usage errors, a declined confirmation, --help: click's own
        except Exception as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            if isinstance(error, OSError) and error.errno == errno.EPIPE:
                raise  # the output's reader went away: click ends quietly
            notes = "; ".join(" ".join(note.split()) for note in getattr(error, "__notes__", ()))
            command = f"fer-agent --debug {ctx.invoked_subcommand} ..." if ctx.invoked_subcommand else \
                "fer-agent --debug ..."
            click.echo(f"error: {unexpected_error(error)}{f' ({notes})' if notes else ''}: this is a bug; run the same "
                       f"command as `{command}` for the traceback and report it", err=True)
            sys.exit(1)


@click.group(cls=FerAgentGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logging.")
@click.version_option(installed_version(), prog_name="fer-agent")
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


def _require_batch_extra() -> None:
    """``batch`` runs on Dask, which the runtime does not install: say how to get it."""
    try:
        import distributed  # noqa: F401
    except ImportError as error:
        raise FerAgentError(f"this command needs the batch extra ({error.name or error} is missing): "
                            "pip install 'fer-agent[batch]'") from error


class FiniteFloat(click.FloatRange):
    """A number option: click's FloatRange (an optional range) that also refuses nan, inf and -inf, which float()
    takes and which would reach the session as a crash or a run without end. Every float option uses it."""

    name = "number"

    def convert(self, value, param, ctx) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def _trained(name: str):
    """A training option's default, from the library's TrainConfig: each default is written once."""
    from fer_agent.training.config import TrainConfig

    config_field = TrainConfig.__dataclass_fields__[name]
    factory = config_field.default_factory
    value = config_field.default if factory is dataclasses.MISSING else factory()
    return ",".join(map(str, value)) if isinstance(value, list) else value


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
@click.option("--out-dir", default=_trained("out_dir"), show_default=True, type=click.Path(file_okay=False),
              help="Where checkpoints go (last.pt every epoch, best.pt by PublicTest accuracy).")
@click.option("--targets", type=click.Choice(["ferplus", "fer2013"]), default=_trained("targets"), show_default=True,
              help="Train on FER+ vote distributions or on the original single FER-2013 labels.")
@click.option("--epochs", default=_trained("epochs"), show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=_trained("batch_size"), show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=_trained("lr"), show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Peak learning rate of the one-cycle schedule.")
@click.option("--weight-decay", default=_trained("weight_decay"), show_default=True, type=FiniteFloat(min=0))
@click.option("--label-smoothing", default=_trained("label_smoothing"), show_default=True, type=FiniteFloat(0, 1))
@click.option("--class-weighting", type=click.Choice(["none", "sqrt", "inverse"]), default=_trained("class_weighting"),
              show_default=True, help="Weight the loss by inverse (or inverse square root) class frequency.")
@click.option("--augment", type=click.Choice(["standard", "webcam"]), default=_trained("augment"), show_default=True,
              help="standard: flip, rotate, scale, shift, erase. webcam: also head turns, uneven light, blur, sensor "
                   "noise and JPEG blocking, as faces come from compressed webcam video.")
@click.option("--teacher", "teachers", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Distil from this trained model, an ONNX file or a training checkpoint (.pt, run on --device) "
                   "(repeat for an ensemble): the targets mix in the teachers' mean probabilities over each face "
                   "and its mirror image.")
@click.option("--distill", default=_trained("distill"), show_default=True, type=FiniteFloat(0, 1),
              help="Weight of the teachers' probabilities in the targets (the rest is the FER+ votes or label).")
@click.option("--width", default=_trained("width"), show_default=True, type=click.IntRange(min=1),
              help="Channels of the first stage (doubled at each later stage).")
@click.option("--blocks", default=_trained("blocks"), show_default=True, callback=_parse_blocks,
              help="Residual blocks per stage, comma-separated.")
@click.option("--dropout", default=_trained("dropout"), show_default=True, type=FiniteFloat(0, 1))
@click.option("--seed", default=_trained("seed"), show_default=True, type=int)
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N faces of each split (quick runs).")
@click.option("--device", default=_trained("device"), show_default=True,
              help="auto (CUDA when present), cpu, cuda, cuda:N.")
@click.option("--resume", is_flag=True, help="Continue from last.pt in --out-dir.")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False),
              help="After training, export the best checkpoint to this ONNX file (with its model card).")
def train(resume: bool, onnx_path: str | None, **options) -> None:
    """Train the emotion CNN on FER-2013 (FER+ vote distributions by default)."""
    _require_training_extra()
    from fer_agent.training.train import BEST_CHECKPOINT, TrainConfig
    from fer_agent.training.train import train as run_training

    config = TrainConfig(**{**options, "teachers": list(options["teachers"])})
    try:
        history = run_training(config, resume=resume)
    except KeyboardInterrupt:
        click.echo("interrupted; the last finished epoch is saved: continue with the same options and --resume",
                   err=True)
        sys.exit(130)
    best = max(history, key=lambda record: record.val_accuracy)
    click.echo(f"best PublicTest accuracy {best.val_accuracy:.4f} at epoch {best.epoch}; "
               f"checkpoints in {config.out_dir}")
    if onnx_path:
        from fer_agent.training.export import export_onnx

        export_onnx(Path(config.out_dir) / BEST_CHECKPOINT, onnx_path, version=installed_version())
        click.echo(f"exported {onnx_path} and {model_card_for(Path(onnx_path))}")


@main.command("export-model")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="ONNX file to write; the model card goes beside it (.json). To replace the shipped model in a "
                   "checkout: -o models/emotion.onnx.")
@click.option("--model-version", default=installed_version(), show_default=True, help="Written into the ONNX metadata.")
def export_model(checkpoint: str, output: str, model_version: str) -> None:
    """Export a training checkpoint to ONNX (raw 0..255 grey input, softmax output) with its model card."""
    _require_training_extra()
    from fer_agent.training.export import export_onnx

    card = export_onnx(checkpoint, output, version=model_version)
    click.echo(f"exported {output} ({card['file_size_bytes'] / 1e6:.2f} MB, {card['parameters']:,} parameters) "
               f"and {model_card_for(Path(output))}")


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", required=True, type=click.Path(exists=True),
              help="FER-2013 folder or CSV file (FER+ votes attached when fer2013new.csv is beside it).")
@click.option("--ferplus", type=click.Path(exists=True, dir_okay=False), help="FER+ votes file, if not beside.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="ONNX file to write, with its model card beside it (.json). To calibrate the shipped model in a "
                   "checkout: -o models/emotion.onnx.")
def calibrate(model: str, data: str, ferplus: str | None, output: str) -> None:
    """Calibrate MODEL's probabilities: fit a temperature on PublicTest, fold it into the ONNX graph, and measure
    the expected calibration error on PublicTest and PrivateTest before and after. The top label never changes."""
    from fer_agent.training.calibration import fit_temperature, fold_temperature, reliability, with_temperature
    from fer_agent.training.card import record_calibration
    from fer_agent.training.data import load_dataset
    from fer_agent.training.evaluate import predict_dataset
    from fer_agent.vision.classifier import EmotionClassifier

    dataset = load_dataset(data, ferplus=ferplus)
    classifier = EmotionClassifier(model, threads=0)
    splits = {}
    for split in ("PublicTest", "PrivateTest"):
        part = dataset.split(split)
        truth = part.majority_labels() if part.votes is not None else part.labels
        counted = truth >= 0
        splits[split] = (predict_dataset(classifier, part)[counted], truth[counted])
    temperature = fit_temperature(*splits["PublicTest"])
    total = fold_temperature(model, output, temperature)
    errors = {split: {"before": reliability(probabilities, truth).ece,
                      "after": reliability(with_temperature(probabilities, temperature), truth).ece}
              for split, (probabilities, truth) in splits.items()}
    card = record_calibration(Path(model), Path(output), temperature, total, errors)
    for split, ece in errors.items():
        click.echo(f"{split}: expected calibration error {ece['before']:.2%} -> {ece['after']:.2%}")
    click.echo(f"temperature {temperature:.4f} fitted on PublicTest (the model's, all told: {total:.4f}); wrote "
               f"{output}" + (f" and {card}" if card else ""))


@main.command()
@click.option("--model", "model_path", default=str(default_emotion_model()), show_default=True,
              type=click.Path(dir_okay=False), help="ONNX emotion model.")
@click.option("--data", type=click.Path(exists=True),
              help="FER-2013 folder or CSV file (FER+ votes attached when fer2013new.csv is beside it), or "
                   "<split>/<class>/ image tree of 48x48 faces.")
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Instead of --data: a folder-per-class image set (<class>/ folders named after our labels or "
                   "synonyms such as anger, happiness, surprised), evaluated through the agent's full path: face "
                   "detector, crop, classifier.")
@click.option("--ferplus", type=click.Path(exists=True, dir_okay=False), help="FER+ votes file, if not beside.")
@click.option("--split", type=click.Choice(["PrivateTest", "PublicTest", "Training"]), default="PrivateTest",
              show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N faces (or images).")
@click.option("--confusion", type=click.Path(dir_okay=False), help="Save the confusion matrix as an image (PNG/SVG).")
@click.option("--reliability", type=click.Path(dir_okay=False),
              help="With --data: save the reliability diagram (accuracy against confidence) as an image (PNG/SVG).")
@click.option("--card", type=click.Path(exists=True, dir_okay=False),
              help="Write the metrics into this model card under metrics.<split> (with --data).")
@click.option("--detector-model", type=click.Path(dir_okay=False),
              help="With --images: the BlazeFace model (also: FER_AGENT_DETECTOR_MODEL), as for `start`.")
@click.option("--discovery-model", type=click.Path(dir_okay=False),
              help="With --images: the CenterFace model (also: FER_AGENT_DISCOVERY_MODEL), as for `start`.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path: str, data: str | None, images: str | None, ferplus: str | None, split: str,
             limit: int | None, confusion: str | None, reliability: str | None, card: str | None,
             detector_model: str | None, discovery_model: str | None, as_json: bool) -> None:
    """Evaluate an emotion model on a FER-2013 split (FER+ majority-vote accuracy, FER-2013-label accuracy,
    macro-F1, per-class precision and recall, confusion matrix), or on any folder-per-class image set through the
    agent's full runtime path (--images), listing the images where no face was found."""
    from rich.console import Console

    from fer_agent.training.card import record_evaluation
    from fer_agent.training.data import load_dataset
    from fer_agent.training.evaluate import evaluate as score
    from fer_agent.training.evaluate import (
        evaluate_images,
        predict_dataset,
        save_confusion_matrix,
        save_reliability_diagram,
    )
    from fer_agent.vision.classifier import EmotionClassifier

    if images is not None and data is None:
        if card or ferplus or reliability:
            raise click.UsageError("--card, --ferplus and --reliability apply to --data only")
        with _analyzer(detector_model, discovery_model, model_path, threads=1) as analyzer:
            on_images = evaluate_images(analyzer, images, limit)
        if confusion:
            save_confusion_matrix(on_images, confusion, f"{Path(model_path).name} on {Path(images).name}")
        if as_json:
            click.echo(json.dumps(on_images.to_dict(), indent=2))
            return
        Console().print(on_images)
        return
    if data is None or images is not None:
        raise click.UsageError("give one of --data (FER-2013) or --images (a folder-per-class image set)")
    classifier = EmotionClassifier(model_path, threads=0)
    dataset = load_dataset(data, ferplus=ferplus).split(split)
    if limit is not None:
        dataset = dataset.subset(slice(0, limit))
    result = score(predict_dataset(classifier, dataset), dataset, split)
    if confusion:
        save_confusion_matrix(result, confusion, f"{Path(model_path).name} on {split} ({result.reference})")
    if reliability:
        save_reliability_diagram(result, reliability, f"{Path(model_path).name} on {split}")
    if card:
        record_evaluation(card, result)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    Console().print(result)


def _parse_duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """Seconds, or a number with s, m or h (90m, 1.5h)."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    text = value.strip().lower()
    scale = units.get(text[-1:], None)
    try:
        seconds = float(text[:-1] if scale else text) * (scale or 1)
    except ValueError:
        raise click.BadParameter(f"expected seconds or a number with s, m or h (90m, 1.5h), got {value!r}") from None
    if not math.isfinite(seconds):
        raise click.BadParameter(f"expected a finite duration (without --duration it runs until stopped), got "
                                 f"{value!r}")
    if seconds <= 0:
        raise click.BadParameter(f"expected a duration > 0, got {value!r}")
    return seconds


def _source_options(command, fps_help: str = "Frames per second: captures per second of the screen or a camera, "
                                             "or samples per second of a video's time.", threads: bool = True):
    # At least one frame in 10000 s (2.8 hours): the interval between frames must be a time the clock can sleep.
    command = click.option("--fps", default=1.0, show_default=True, type=FiniteFloat(min=0.0001),
                           help=fps_help)(command)
    command = click.option("--model", "model_path", default=str(default_emotion_model()), show_default=True,
                           type=click.Path(dir_okay=False), help="Emotion model (ONNX).")(command)
    if threads:
        command = click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
                               help="CPU threads for the emotion model.")(command)
    command = click.option("--names", is_flag=True,
                           help="Read each participant's name off their tile (the label the call app draws), and "
                                "keep it with them. Off by default: see Privacy in the README.")(command)
    for model in (BLAZEFACE, CENTERFACE, TEXT_DETECTOR, TEXT_RECOGNIZER):
        command = click.option(model.option, type=click.Path(dir_okay=False),
                               help=("With --names: the " if model.kind == "text" else "The ") + f"{model.kind} model "
                                    f"{model.name} to use instead of the cached or fetched one (also: "
                                    f"{model.environment_variable}).")(command)
    return command


def _window_option(command):
    return click.option("--window", metavar="TEXT",
                        help="Watch the window whose title contains TEXT (any case; e.g. zoom, Meet, Teams), wherever "
                             "it is: followed as it moves and resizes; the time it is minimised or covered is not "
                             "observed. `fer-agent windows` lists the windows.")(command)


def _analyzer(detector_model: str | None, discovery_model: str | None, model_path: str, threads: int,
              live: bool = False, names: bool = False, text_models: tuple[str | None, str | None] = (None, None)):
    from fer_agent.vision.analysis import Analyzer

    return Analyzer.from_options(detector_model, discovery_model, model_path, threads, live, names, text_models)


def _database_option(command):
    return click.option("--db", "database", type=click.Path(dir_okay=False),
                        help="Session database (SQLite). Default: fer-agent.db in your user data folder.")(command)


def _any_database_option(command):
    return click.option("--db", "database", metavar="PATH|URL",
                        help="Session database: a SQLite file (default: fer-agent.db in your user data folder), or a "
                             "central PostgreSQL database, postgresql://HOST/DBNAME (user and password from PGUSER, "
                             "PGPASSWORD or ~/.pgpass; never in the URL).")(command)


def _database_path(database: str | None) -> Path:
    """``--db`` of a command that works on a SQLite file only."""
    from fer_agent.store.central import is_central
    from fer_agent.store.writer import default_database

    if is_central(database):
        raise click.BadParameter("this command works on a SQLite file; record into one (the default, or --db PATH), "
                                 "then send it to the central database with fer-agent sync --to URL",
                                 param_hint="'--db'")
    return Path(database) if database else default_database()


def _any_database(database: str | None) -> str | Path:
    """``--db`` of a command that also reads or writes the central database: its URL as given, or the SQLite path."""
    from fer_agent.store.central import check_url, is_central

    if is_central(database):
        check_url(str(database))
        return str(database)
    return _database_path(database)


def _load_session(database: str | None, session: int | None):
    """The session's data (the latest session when ``session`` is None), read from the database read-only."""
    from fer_agent.store.reader import load_session, reading

    with reading(_any_database(database)) as conn:
        return load_session(conn, session)


@main.command()
@click.option("--source", default="screen", show_default=True,
              help="screen (primary monitor), screen:N (monitor N), a video file (mp4, mkv, avi, ...), an image, a "
                   "folder of screenshots, or webcam:N.")
@click.option("--region", metavar="X,Y,W,H", help="Watch only this part of the monitor, in pixels.")
@_window_option
@click.option("--duration", callback=_parse_duration, metavar="TIME",
              help="Stop after this long: seconds, or 90m, 1.5h (video: of video time). Default: until Ctrl-C.")
@_database_option
@click.option("--quiet", is_flag=True,
              help="No live dashboard: one status line per minute, and the summary at the end.")
@click.option("--plain", is_flag=True,
              help="No redrawing: one line per minute and one per event, for a pipe or a log (the default when the "
                   "output is not a terminal).")
@click.option("--no-face-minutes", default=2.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Record a no_faces event after this many minutes without a face.")
@_source_options
def start(source: str, region: str | None, window: str | None, duration: float | None, database: str | None,
          quiet: bool, plain: bool, no_face_minutes: float, fps: float, detector_model: str | None,
          discovery_model: str | None, model_path: str, threads: int, names: bool, text_detector_model: str | None,
          text_recognizer_model: str | None) -> None:
    """Watch the class: capture the gallery, classify every face, log to SQLite, show a live summary.

    Stops on Ctrl-C, SIGTERM, SIGHUP (the terminal closed) or --duration, closes the session, and says where the
    data is. No image is ever written to disk.
    """
    import signal

    from rich.console import Console

    from fer_agent.capture.sources import open_source
    from fer_agent.session import StopSignals, run_session
    from fer_agent.store.writer import Store

    path = _database_path(database)
    frame_source = open_source(source, fps, region, window)
    console = Console(stderr=True)
    drawn_on = None if quiet or plain or not console.is_terminal else console

    # SIGHUP is not on Windows.
    reasons = {getattr(signal, name): reason for name, reason in (
        ("SIGINT", "stopped by the user (Ctrl-C)"),
        ("SIGTERM", "stopped by SIGTERM (the system or another program asked the agent to stop)"),
        ("SIGHUP", "stopped by SIGHUP (the terminal was closed)")) if hasattr(signal, name)}
    requests = StopSignals()

    def on_signal(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and requests.reason is not None:
            # A second Ctrl-C before the first stop was taken (a frame still being analysed): stop at once.
            raise KeyboardInterrupt
        requests.request(reasons[signum])

    # Until the session starts, Ctrl-C aborts as usual (loading the models, a first download of them): nothing is
    # recorded yet. From then on a stop is taken between frames; while the models and the database close, stop
    # signals are ignored.
    previous: dict = {}
    try:
        with _analyzer(detector_model, discovery_model, model_path, threads, frame_source.live, names,
                       (text_detector_model, text_recognizer_model)) as analyzer, \
                Store(path) as store:
            accuracy = model_test_accuracy(Path(model_path))
            previous = {number: signal.signal(number, on_signal) for number in reasons}
            try:
                summary = run_session(
                    frame_source, analyzer, store, model_version=analyzer.classifier.contract.version,
                    model_accuracy=accuracy,
                    detector=f"{analyzer.discovery.model_path.name} + {analyzer.detector.model_path.name}",
                    duration=duration, no_face_seconds=no_face_minutes * 60, console=drawn_on,
                    say=None if drawn_on else click.echo, say_events=not quiet, stop=requests)
            finally:
                for number in previous:
                    signal.signal(number, signal.SIG_IGN)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        frame_source.close()
    try:
        click.echo(f"session {summary.session_id} {summary.status}: {summary.frames} frames "
                   f"({summary.dropped} dropped), {summary.participants} participants"
                   + (f" ({summary.message})" if summary.message else ""))
        click.echo(f"data: {summary.database}")
        click.echo(f"report: fer-agent report {summary.session_id} --db {summary.database}")
        if summary.skipped:
            click.echo(_skipped_line(summary.skipped), err=True)
    except OSError:
        # The terminal is gone (SIGHUP): the session is closed and recorded all the same.
        pass


@main.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--cluster", metavar="ADDRESS",
              help="Send the work to this Dask scheduler (tcp://HOST:8786), whose workers can read the recordings at "
                   "the same paths. Default: a cluster on this machine, one worker per core.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Worker processes of the local cluster (default: one per CPU core).")
@click.option("--chunk", "chunk_minutes", default=10.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Minutes of video per task: a long lecture is cut into chunks that workers analyse side by side.")
@click.option("--cache", type=click.Path(file_okay=False),
              help="Where finished chunks wait until their recording's session is written (what a stopped batch "
                   "keeps). Default: batch/ in your user cache folder.")
@_any_database_option
@click.option("--no-face-minutes", default=2.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Record a no_faces event after this many minutes without a face.")
@functools.partial(_source_options, fps_help="Samples per second of each video's time.", threads=False)
def batch(paths: tuple[str, ...], cluster: str | None, workers: int | None, chunk_minutes: float, cache: str | None,
          database: str | None, no_face_minutes: float, fps: float, model_path: str, names: bool,
          detector_model: str | None, discovery_model: str | None, text_detector_model: str | None,
          text_recognizer_model: str | None) -> None:
    """Analyse recorded lectures, each into one session, on a Dask cluster (local by default).

    PATH: video files, folders (searched recursively for videos, and for folders of screenshots, each one
    recording), list files (.txt, .list, .lst: one path per line), or glob patterns. A recording already analysed
    with the same settings is skipped; a stopped batch continues where it stopped when run again.
    """
    _require_batch_extra()
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from fer_agent.batch import Settings, run_batch

    settings = Settings(fps, str(Path(model_path).resolve()), detector_model, discovery_model, names,
                        text_detector_model, text_recognizer_model, no_face_minutes * 60)
    console = Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[recordings]}"),
               TextColumn("{task.fields[hours]}"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("finding recordings", total=None, recordings="", hours="", rate="")

        def progress(what: str, done: float, total: float, written: int, recordings: int) -> None:
            speed = bar.tasks[0].speed
            bar.update(task, description=what, completed=done, total=total or None,
                       recordings=f"{written}/{recordings} recordings",
                       hours=f"{done / 3600:.2f}/{total / 3600:.2f} h of video" if total else "",
                       rate=f"{speed:.1f} h of video per hour" if speed else "")

        try:
            summary = run_batch(paths, settings, _any_database(database), cluster=cluster, workers=workers,
                                chunk_seconds=chunk_minutes * 60, cache=Path(cache) if cache else None,
                                progress=progress)
        except KeyboardInterrupt:
            click.echo("stopped; the finished chunks are kept: run the same command again to continue", err=True)
            sys.exit(130)
    Console().print(summary)
    if any(outcome.status == "failed" for outcome in summary.outcomes):
        sys.exit(1)


@main.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image or video frame (JSON lines).")
@functools.partial(_source_options, fps_help="Samples per second of a video's time (screenshots: each is one "
                                               "picture).")
def analyze(path: str, as_json: bool, fps: float, detector_model: str | None, discovery_model: str | None,
            model_path: str, threads: int, names: bool, text_detector_model: str | None,
            text_recognizer_model: str | None) -> None:
    """Find and classify the faces in a screenshot, a folder of screenshots, or a video (sampled at --fps).

    Each picture is analysed on its own, the whole screen searched. Nothing is stored. Boxes are [x, y, w, h] in the
    image's pixels (a picture larger than 8K is analysed scaled down; its boxes are given in its own pixels). In a
    folder, a file that cannot be read is skipped with a warning, and the skipped files are listed at the end.
    """
    from rich.console import Console
    from rich.table import Table

    from fer_agent.capture.sources import open_source

    frame_source = open_source(path, fps)
    table = Table("source", "faces", "expressions", *(["names"] if names else []))
    skipped = []

    def warn_skipped() -> None:
        for file in frame_source.take_skipped():
            skipped.append(file)
            click.echo(f"warning: skipped {file.name}: {file.reason}", err=True)

    finished = False
    try:
        with _analyzer(detector_model, discovery_model, model_path, threads, names=names,
                       text_models=(text_detector_model, text_recognizer_model)) as analyzer:
            frames = iter(frame_source.frames())
            while True:
                try:
                    frame = next(frames, None)
                finally:
                    warn_skipped()
                if frame is None:
                    break
                faces = analyzer.find(frame.image)
                if as_json:
                    click.echo(json.dumps({"source": frame.name,
                                           "faces": [observation.to_dict(frame, names) for observation in faces]}))
                else:
                    counts = Counter(observation.emotion for observation in faces)
                    table.add_row(frame.name, str(len(faces)),
                                  ", ".join(f"{n} {label}" for label, n in sorted(counts.items())),
                                  *([", ".join(o.name or "-" for o in faces)] if names else []))
        finished = True
    finally:
        frame_source.close()
        # What was analysed is shown also when the source fails part-way (a video cut short): its error follows.
        if not as_json and (finished or table.row_count):
            Console().print(table)
        if skipped:
            click.echo(_skipped_line(skipped), err=True)


def _skipped_line(skipped) -> str:
    """A folder's files that could not be read, in one line: ``skipped 2 unreadable files: a.jpg (reason), ...``."""
    files = ", ".join(f"{Path(file.name).name} ({file.reason})" for file in skipped)
    return f"skipped {len(skipped)} unreadable file{'s' if len(skipped) != 1 else ''}: {files}"


@main.command()
@click.option("--source", default="screen", show_default=True,
              help="What to capture, as for `start`: screen, screen:N, an image, a video (its first frame), webcam:N.")
@click.option("--region", metavar="X,Y,W,H", help="Only this part of the monitor, in pixels.")
@_window_option
@click.option("--save", type=click.Path(dir_okay=False),
              help="Also write the capture with every face boxed and labelled (PNG or JPEG). It shows the "
                   "participants' faces: keep it private and delete it when done.")
@_source_options
def check(source: str, region: str | None, window: str | None, save: str | None, fps: float,
          detector_model: str | None, discovery_model: str | None, model_path: str, threads: int, names: bool,
          text_detector_model: str | None, text_recognizer_model: str | None) -> None:
    """Before class: capture the screen (or region, or window) once and say what the agent sees there: the faces
    found, where, in what layout, and the participants a session would start with."""
    import cv2
    from rich.console import Console

    from fer_agent.capture.sources import open_source
    from fer_agent.vision.check import annotate, describe

    frame_source = open_source(source, fps, region, window)
    try:
        frame = next(iter(frame_source.frames()), None)
    finally:
        frame_source.close()
        # A folder's first readable picture is checked; the unreadable ones before it are said.
        for file in frame_source.take_skipped():
            click.echo(f"warning: skipped {file.name}: {file.reason}", err=True)
    if frame is None:
        raise click.ClickException(f"{source}: nothing to capture")
    if frame.hidden:
        raise click.ClickException(f"{frame.hidden}: nothing of the call can be seen")
    with _analyzer(detector_model, discovery_model, model_path, threads, names=names,
                   text_models=(text_detector_model, text_recognizer_model)) as analyzer:
        sight = describe(frame, analyzer.find(frame.image), names)
    console = Console()
    console.print(sight)
    if save:
        if not cv2.imwrite(save, annotate(sight)):
            raise click.ClickException(f"{save}: cannot write the picture (use a .png or .jpg name in a writable "
                                       "folder)")
        height, width = frame.image.shape[:2]
        console.print(f"wrote {save}" + (f" ({width}x{height}, as analysed)" if frame.scale > 1 else "")
                      + ": it shows the participants' faces; keep it private and delete it when done")


@main.command()
def windows() -> None:
    """List the windows on this display, with their places and sizes: the titles `--window TEXT` can choose from."""
    from rich.console import Console

    from fer_agent.capture.windows import list_windows, windows_table

    found = list_windows()
    if not found:
        click.echo("no windows with a title on this display (is a window manager running?)")
        return
    Console().print(windows_table(found))


@main.command()
@_any_database_option
def sessions(database: str | None) -> None:
    """List the recorded sessions: id, start, duration, status, participants, frames (of a central database: the
    caller's own, or everyone's for an administrator)."""
    from rich.console import Console

    from fer_agent.store.reader import list_sessions, reading, sessions_table

    path = _any_database(database)
    with reading(path) as conn:
        rows = list_sessions(conn)
    if not rows:
        click.echo(f"no sessions in {path}")
        return
    Console().print(sessions_table(str(path), rows))


@main.command()
@click.argument("session", required=False, type=click.IntRange(min=1))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="HTML file to write. Default: fer-agent-session-N.html in the current folder.")
@click.option("--interval", type=FiniteFloat(min=1), metavar="SECONDS",
              help="Seconds per point of the charts. Default: from the session's length: 2 s under a minute, 5 s under "
                   "2 minutes, 10 s under 5, 30 s up to 30 minutes, 60 s beyond (at least two frames).")
@click.option("--pseudonymous", is_flag=True,
              help="Participants as P1, P2, ... only, even when the session recorded their names (--names).")
@_any_database_option
def report(session: int | None, output: str | None, interval: float | None, pseudonymous: bool,
           database: str | None) -> None:
    """Write the post-class report of SESSION (default: the latest) as one self-contained HTML file.

    The file opens offline in any browser and prints well: mood and attention over the lecture, the engagement
    index, key moments, participants (pseudonymous), methodology and limitations.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fer_agent.reports.html import render_report, write_report

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("reading the session")
        data = _load_session(database, session)
        built = render_report(data, interval, step=lambda what: progress.update(task, description=what),
                              pseudonymous=pseudonymous)
        path = Path(output) if output else Path(f"fer-agent-session-{data.info.id}.html")
        size = write_report(built, path)
    click.echo(f"report of session {data.info.id}: {path} ({size / 1e6:.2f} MB, {built.summary})")


@main.command()
@click.argument("session", required=False, type=click.IntRange(min=1))
@click.option("--format", "file_format", type=click.Choice(["csv", "json"]), default="json", show_default=True,
              help="json: one file; csv: two files, <stem>-timeline.csv and <stem>-participants.csv.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="File to write (csv: the stem of the two files). Default: fer-agent-session-N.json, or "
                   "fer-agent-session-N-*.csv.")
@click.option("--interval", default=60.0, show_default=True, type=FiniteFloat(min=1), metavar="SECONDS",
              help="Seconds per row of the timeline.")
@_any_database_option
def export(session: int | None, file_format: str, output: str | None, interval: float,
           database: str | None) -> None:
    """Export SESSION's numbers (default: the latest): the class per minute (faces, attention, mean expression
    probabilities, engagement index) and each participant's summary."""
    from fer_agent.reports.export import session_export, write_export

    data = _load_session(database, session)
    target = output or f"fer-agent-session-{data.info.id}" + (".json" if file_format == "json" else "")
    for path in write_export(session_export(data, interval), file_format, target):
        click.echo(str(path))


@main.command()
@click.argument("session", required=False, type=click.IntRange(min=1))
@click.option("--older-than", type=FiniteFloat(min=0, max=36500), metavar="DAYS",
              help="Delete every session that started more than DAYS days ago (0: every session; at most 36500, "
                   "100 years).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_any_database_option
def purge(session: int | None, older_than: float | None, yes: bool, database: str | None) -> None:
    """Delete SESSION, or the sessions older than --older-than DAYS, with everything recorded in them.

    The rows are removed and the database file is compacted, so the data is gone from disk. Asks first unless --yes.
    """
    from fer_agent.clock import local_time
    from fer_agent.store.central import is_central
    from fer_agent.store.central import purge as purge_central
    from fer_agent.store.reader import reading, select_sessions
    from fer_agent.store.writer import Store

    if (session is None) == (older_than is None):
        raise click.UsageError("name one SESSION, or --older-than DAYS")
    path = _any_database(database)
    with reading(path) as conn:
        chosen = select_sessions(conn, session, older_than)
    if not chosen:
        click.echo(f"no session started more than {older_than:g} days ago; nothing deleted")
        return
    for info in chosen:
        click.echo(f"session {info.id}: started {local_time(info.started_at)}, {info.frames:,} frames, "
                   f"{info.participants} participants, {info.source}")
    if not yes:
        click.confirm(f"Delete {len(chosen)} session{'s' if len(chosen) != 1 else ''} and everything recorded in "
                      f"{'them' if len(chosen) != 1 else 'it'} from {path}?", abort=True, err=True)
    if is_central(path):
        counts = purge_central(str(path), [info.id for info in chosen])
        after = "PostgreSQL frees their space at its next VACUUM"
    else:
        with Store(path) as store:
            counts = store.purge([info.id for info in chosen])
        after = f"{path} is now {Path(path).stat().st_size / 1e6:.2f} MB"
    click.echo(f"deleted {counts['sessions']} session{'s' if counts['sessions'] != 1 else ''} "
               f"({counts['frames']:,} frames, {counts['observations']:,} observations, "
               f"{counts['participants']:,} participants, {counts['events']:,} events); {after}")


def _central_url(url: str) -> str:
    from fer_agent.store.central import check_url, is_central

    if not is_central(url):
        raise click.BadParameter(f"expected a PostgreSQL URL, postgresql://HOST/DBNAME, got {url!r}")
    check_url(url)
    return url


@main.command()
@click.option("--to", "url", required=True, metavar="URL", callback=lambda _ctx, _param, value: _central_url(value),
              help="The central database, postgresql://HOST/DBNAME (user and password from PGUSER, PGPASSWORD or "
                   "~/.pgpass).")
@_database_option
def sync(url: str, database: str | None) -> None:
    """Send this computer's finished sessions to the central database.

    Each session goes once, however often sync runs, with everything recorded in it, in one transaction: an
    interrupted sync leaves no half session, and the next run sends the rest. A session still recording is left
    alone. The central database records the sending database role as the sessions' owner.
    """
    from fer_agent.store.central import sync as send
    from fer_agent.store.database import inspect
    from fer_agent.store.reader import open_database
    from fer_agent.store.writer import MIGRATIONS, Store

    path = _database_path(database)
    open_database(path).close()
    if inspect(path, len(MIGRATIONS)).version < len(MIGRATIONS):
        # Written by an older fer-agent: brought up to date first (as any command that writes to it would).
        with Store(path):
            pass
    result = send(path, url)
    click.echo(f"sent {len(result.sent)} session{'s' if len(result.sent) != 1 else ''}"
               + (f" ({', '.join(f'{local} as {central}' for local, central in result.sent)})" if result.sent else "")
               + f"; {result.already} already there; {result.running} still recording, left for a later sync")


@main.command("setup-central")
@click.argument("url", callback=lambda _ctx, _param, value: _central_url(value))
def setup_central(url: str) -> None:
    """Create (or migrate) fer-agent's tables in a PostgreSQL database, as its owner.

    Also creates the roles fer_agent_instructor and fer_agent_admin, their grants, and the row-level security that
    lets each instructor see only their own sessions (an administrator sees all). Then: GRANT fer_agent_instructor TO
    <role> for each instructor, and GRANT fer_agent_admin TO <role> for each administrator.
    """
    from fer_agent.store.central import connect, setup
    from fer_agent.store.writer import MIGRATIONS

    conn = connect(url)
    try:
        statements = setup(conn)
    finally:
        conn.close()
    click.echo(f"the central database is at schema version {len(MIGRATIONS)} ({len(statements)} statements run); "
               "add instructors with GRANT fer_agent_instructor TO <role>, administrators with GRANT fer_agent_admin "
               "TO <role>")


@main.command()
@click.argument("damaged", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The new database to write (it must not exist yet).")
def salvage(damaged: str, output: str) -> None:
    """Save the readable sessions of a DAMAGED database into a new one.

    The damaged file is only read, never changed. Each table is read as far as it can be, stepping over damaged
    pages; sessions, frames, participants, observations and events that could be read are written to OUTPUT, which
    then works with every command (report, export, sessions). Frames whose observations were not all read are counted
    as incomplete.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fer_agent.store.salvage import salvage as save_readable

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("reading")
        result = save_readable(Path(damaged), Path(output),
                               step=lambda what: progress.update(task, description=what))
    Console().print(result.table(output))
    click.echo(result.summary(output))
