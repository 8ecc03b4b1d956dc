"""The labelling commands: ``deepal project init``, ``query``, ``import-labels``, ``export``,
``status``, ``predict``, ``review`` and ``label``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from deepal.errors import DeepALError


def _project_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--project", default=".", metavar="DIR",
                        help="the project folder (default: the current folder)")


def _threads_option(parser: argparse.ArgumentParser) -> None:
    from deepal.resources import DEFAULT_THREADS

    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, metavar="N",
                        help=f"CPU threads torch trains with (default {DEFAULT_THREADS}, the "
                        "fastest on a shared machine; a query records it with its round)")


def register(commands: Any) -> None:
    """Add the labelling sub-commands to the ``deepal`` parser's ``commands``."""
    from deepal.cli import add_option, add_query_options
    from deepal.config.pretraining import SELF_SUPERVISED
    from deepal.config.project import KINDS, MODELS, NETS
    from deepal.config.training import SEMI_SUPERVISED_METHODS

    project = commands.add_parser("project", help="create a labelling project")
    project_commands = project.add_subparsers(dest="project_command", metavar="ACTION")
    project_commands.required = True
    init = project_commands.add_parser(
        "init", help="create a labelling project over your data",
        description="Create a labelling project in DIR: read the data once, list its items "
        "in the project's SQLite database and remember the classes, network and strategy.")
    init.add_argument("dir", nargs="?", default=".", help="the project folder (default: .)")
    add_option(init, "data", required=True, metavar="PATH",
               help="an image folder (flat: unlabeled; class sub-folders: labeled), a .csv or "
               ".parquet table, a .npy/.npz file, or a .txt file of texts (one per line)")
    add_option(init, "classes", metavar="A,B,...",
               help="the class names, comma separated (required unless the data names them)")
    add_option(init, "kind", choices=KINDS,
               help="what the data is (default: guessed from the path)")
    add_option(init, "test", metavar="PATH",
               help="a labeled test set of the same kind, for the held-out accuracy")
    add_option(init, "net", default="auto", choices=NETS,
               help="network (default auto: a small CNN for images, an MLP otherwise)")
    add_option(init, "model", choices=MODELS,
               help="a scikit-learn classifier in place of the network, for tables and arrays "
               "(refitted on the labels at each query; with it, the strategy is one that needs "
               "only probabilities: RandomSampling, LeastConfidence, MarginSampling or "
               "EntropySampling)")
    add_option(init, "strategy", default="EntropySampling", metavar="NAME",
               help="query strategy (see `deepal list`; default EntropySampling), or your own "
               "package.module:Class (then typed again at each query: a project's database "
               "never names code to import)")
    add_option(init, "image-size", type=int, default=32, metavar="PIXELS",
               help="images are resized to PIXELS x PIXELS for training (default 32)")
    add_option(init, "channels", type=int, default=3, choices=(1, 3),
               help="3 = colour, 1 = grayscale (default 3)")
    add_option(init, "n-epoch", type=int, metavar="N", help="training epochs (default 20)")
    add_option(init, "seed", type=int, default=1, help="random seed (default 1)")
    add_option(init, "semi-supervised", choices=SEMI_SUPERVISED_METHODS,
               help="train on the unlabeled items too: fixmatch (augmented views of images; "
               "pseudo-labels for other data) or pseudo_label (default: labels only)")
    add_option(init, "warm-start-epochs", type=int, metavar="N",
               help="each query continues training the last model for N epochs with the new "
               "labels, instead of retraining from scratch (default: retrain)")
    add_option(init, "features", choices=[SELF_SUPERVISED],
               help="TypiClust or ProbCover embed the items with features pretrained on them "
               "(SimCLR, kept in the project folder) and pick even the first batch "
               "(default: the network's embedding, and a random first batch)")
    add_option(init, "label-column", metavar="NAME", help="the table's column of labels")
    add_option(init, "text-column", metavar="NAME",
               help="the table's column of texts (with --kind texts; default 'text')")
    init.set_defaults(handler=command_init)

    query = commands.add_parser(
        "query", help="train on the labels so far and pick the next batch to label")
    _project_option(query)
    query.add_argument("-n", type=int, default=50, help="items to pick (default 50)")
    add_option(query, "device", metavar="DEVICE", help="cpu, cuda, mps (default: cuda if any)")
    add_option(query, "n-epoch", type=int, metavar="N", help="training epochs this time")
    add_option(query, "strategy", metavar="NAME",
               help="another strategy this time, or the project's own package.module:Class")
    _threads_option(query)
    add_query_options(query)
    query.set_defaults(handler=command_query)

    imports = commands.add_parser(
        "import-labels", help="record labels from a CSV, JSON or Label Studio file")
    imports.add_argument("file", help="CSV (item,label[,annotator]), JSON list of "
                         "{item, label}, or a Label Studio JSON export")
    _project_option(imports)
    add_option(imports, "annotator", default="import",
               help="annotator recorded where the file names none (default: import)")
    imports.set_defaults(handler=command_import)

    export = commands.add_parser(
        "export", help="write the labels and a trained model, or the batch for Label Studio")
    _project_option(export)
    export.add_argument("-o", "--output", metavar="DIR",
               help="where to write (default: DIR/export of the project)")
    add_option(export, "format", default="labels", choices=("labels", "label-studio"),
               help="labels: labels.csv and model.pt; label-studio: the current batch as "
               "tasks.json and label_config.xml")
    add_option(export, "no-model", action="store_true", help="labels only, no training")
    add_option(export, "device", metavar="DEVICE", help="where to train the model")
    _threads_option(export)
    export.set_defaults(handler=command_export)

    status = commands.add_parser("status", help="labels per class, rounds, held-out accuracy")
    _project_option(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=command_status)

    _register_predict(commands)
    _register_review(commands)

    label = commands.add_parser(
        "label", help="label the current batch in a web browser",
        description="Serve the current batch on 127.0.0.1 and print the URL to open; the "
        "URL carries an access token, and requests without it are refused.")
    _project_option(label)
    label.add_argument("--port", type=int, default=8765,
                       help="TCP port (default 8765; 0 = any free port)")
    label.add_argument("--token", help="access token (default: a random one)")
    label.add_argument("-n", type=int, metavar="N",
                       help="items per batch made in the background (default: as many as "
                       "the current batch)")
    label.add_argument("--ahead", type=int, metavar="K",
                       help="start training and picking the next batch when K items of the "
                       "current one are left (default: half the batch; 0: only on the "
                       "page's button)")
    label.add_argument("--no-background", action="store_true",
                       help="make no batch in the background: run `deepal query` yourself")
    label.add_argument("--review", action="store_true",
                       help="check the review batch of `deepal review --batch N` instead")
    add_option(label, "n-epoch", type=int, metavar="N", help="training epochs per batch")
    add_option(label, "strategy", metavar="NAME",
               help="another strategy, or the project's own package.module:Class")
    add_option(label, "device", metavar="DEVICE", help="cpu, cuda, mps (default: cuda if any)")
    _threads_option(label)
    label.set_defaults(handler=command_label)


def _register_predict(commands: Any) -> None:
    from deepal.cli import add_option

    predict = commands.add_parser(
        "predict", help="predict the classes of the unlabeled items, or of new files",
        description="Write the trained model's predictions (class, probability, top classes, "
        "and a needs_review flag) for the project's unlabeled items or for new files.")
    _project_option(predict)
    predict.add_argument("--files", nargs="+", metavar="PATH",
                         help="new files of the project's kind (images or image folders, "
                         "tables, text files) instead of the unlabeled items")
    predict.add_argument("-o", "--output", required=True, metavar="FILE",
                         help="the file to write (e.g. predictions.csv)")
    add_option(predict, "format", default="csv", choices=("csv", "json"),
               help="csv (default) or json")
    add_option(predict, "top-k", type=int, default=3, metavar="K",
               help="classes listed per item (default 3)")
    add_option(predict, "review-below", type=float, default=0.5, metavar="P",
               help="flag needs_review where the probability is below P (default 0.5)")
    add_option(predict, "retrain", action="store_true",
               help="train on every label first instead of using the saved model.pt")
    add_option(predict, "device", metavar="DEVICE", help="cpu, cuda, mps (default: cuda if any)")
    _threads_option(predict)
    predict.set_defaults(handler=command_predict)


def command_predict(args: argparse.Namespace) -> int:
    from deepal.labeling.predict import check_output, write_predictions

    out = Path(args.output)
    check_output(out, args.format)
    project = _open(args)
    rows = project.predict(files=args.files, top_k=args.top_k, review_below=args.review_below,
                           retrain=args.retrain, device=args.device, threads=args.threads)
    write_predictions(rows, out, args.format)
    flagged = sum(row["needs_review"] for row in rows)
    print(f"Wrote {len(rows)} predictions to {out} ({flagged} below probability "
          f"{args.review_below:g}, flagged needs_review).")
    return 0


def _register_review(commands: Any) -> None:
    from deepal.cli import add_option

    review = commands.add_parser(
        "review", help="list the labels most likely wrong",
        description="Predict every labeled item with a model trained without it (k folds) "
        "and list the items whose label the model doubts, most doubtful first; FLAGGED "
        "items are those where it confidently prefers another class (confident learning).")
    _project_option(review)
    add_option(review, "folds", type=int, default=5, metavar="K",
               help="models trained, each without one fold of the labels (default 5)")
    add_option(review, "top", type=int, default=20, metavar="N",
               help="items printed (default 20; the --output file holds them all)")
    review.add_argument("-o", "--output", metavar="FILE",
                        help="write every labeled item, ranked, to FILE (.csv or .json)")
    add_option(review, "batch", type=int, metavar="N",
               help="keep the N most doubtful as a review batch to check in the browser "
               "with `deepal label --review`")
    add_option(review, "device", metavar="DEVICE", help="cpu, cuda, mps (default: cuda if any)")
    _threads_option(review)
    review.set_defaults(handler=command_review)


def command_review(args: argparse.Namespace) -> int:
    out = None if args.output is None else Path(args.output)
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        raise DeepALError(f"-o {out}: write a .csv or a .json file")
    if out is not None and not out.parent.is_dir():
        raise DeepALError(f"-o {out}: the folder {out.parent} does not exist")
    if args.top < 0:
        raise DeepALError(f"--top {args.top}: give a number of items, 0 or more")
    if args.batch is not None and args.batch < 1:
        raise DeepALError(f"--batch {args.batch}: give a number of items, 1 or more")
    project = _open(args)
    rows = project.review(folds=args.folds, device=args.device, threads=args.threads)
    flagged = sum(row["flagged"] for row in rows)
    print(f"{flagged} of {len(rows)} labels flagged as likely wrong; the most doubtful:")
    for row in rows[:args.top]:
        mark = "FLAGGED" if row["flagged"] else "       "
        print(f"{mark} item {row['item']} ({row['ref']}): labeled {row['label']} by "
              f"{row['annotator']} (p={row['label_probability']:.2f}), model says "
              f"{row['suggested']} (p={row['suggested_probability']:.2f})")
    if out is not None:
        _write_rows(out, rows)
        print(f"Wrote all {len(rows)} to {out}")
    if args.batch is not None:
        from deepal.labeling.doubt import write_review_batch

        write_review_batch(project.root, rows, args.batch)
        print(f"Kept the {min(args.batch, len(rows))} most doubtful as a review batch: check "
              f"them with `deepal label --review -p {args.project}`")
    return 0


def _write_rows(out: Path, rows: list[dict[str, Any]]) -> None:
    import csv
    import io

    if out.suffix.lower() == ".json":
        _write(out, json.dumps(rows, indent=1) + "\n")
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["item"])
    writer.writeheader()
    writer.writerows(rows)
    _write(out, buffer.getvalue())


def _review_batch(project: Any) -> Any:
    from deepal.labeling.doubt import read_review_batch
    from deepal.labeling.views import ReviewBatch

    stamp, items, suggested = read_review_batch(project.root, project.n_items, project.classes)
    return ReviewBatch(stamp, items, suggested)


def _open(args: argparse.Namespace) -> Any:
    from deepal.labeling.project import Project

    return Project(args.project)


def command_init(args: argparse.Namespace) -> int:
    from deepal.labeling.project import Project

    project = Project.init(
        args.dir, args.data, classes=args.classes, kind=args.kind, test=args.test,
        net=args.net, model=args.model, strategy=args.strategy, image_size=args.image_size,
        channels=args.channels, n_epoch=args.n_epoch, seed=args.seed,
        label_column=args.label_column, text_column=args.text_column,
        semi_supervised=None if args.semi_supervised is None
        else {"method": args.semi_supervised}, warm_start_epochs=args.warm_start_epochs,
        features=args.features)
    status = project.status()
    print(f"Created a labelling project in {project.root}: {status['n_items']} items "
          f"({project.settings.kind}), classes {', '.join(project.classes)}, "
          f"{status['n_labeled']} labeled. Next: deepal query -n 50 -p {args.dir}")
    return 0


def command_query(args: argparse.Namespace) -> int:
    from deepal.cli import query_settings

    sharding = query_settings(args)
    project = _open(args)
    result = project.query(args.n, device=args.device, n_epoch=args.n_epoch,
                           strategy=args.strategy, threads=args.threads, sharding=sharding)
    if result.note:
        print(f"note: {result.note}")
    accuracy = "" if result.test_accuracy is None else \
        f", held-out accuracy {result.test_accuracy:.3f}"
    print(f"Round {result.round_id}: {result.strategy} picked {len(result.item_ids)} items "
          f"(trained on {result.n_labeled} labels{accuracy}). Label them with: "
          f"deepal label -p {args.project}")
    return 0


def command_import(args: argparse.Namespace) -> int:
    project = _open(args)
    count = project.import_labels(args.file, annotator=args.annotator)
    print(f"Imported {count} labels from {args.file}.")
    return 0


#: The files ``deepal export`` writes into its folder, by format.
EXPORTS = {"label-studio": ("tasks.json", "label_config.xml"),
           "labels": ("labels.csv", "model.pt")}


def export_folder(out: Path, names: tuple[str, ...]) -> None:
    """Make the folder ``deepal export`` writes ``names`` into, or refuse it with a clear
    error before anything is written: it (or a folder above it) is a file, or one of the
    files to write is a folder.

    Examples
    --------
    ``export_folder(Path("out"), ("labels.csv", "model.pt"))`` makes ``out/``.
    """
    for place in (out, *out.parents):
        if place.exists() and not place.is_dir():
            raise DeepALError(f"-o {out}: {place} is a file, not a folder: choose another "
                              "folder to export to")
    for name in names:
        if (out / name).is_dir():
            raise DeepALError(f"-o {out}: {out / name} is a folder where the export writes a "
                              "file: move it away or choose another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DeepALError(f"-o {out}: cannot make the folder ({error.strerror})") from None


def command_export(args: argparse.Namespace) -> int:
    project = _open(args)
    out = Path(args.output) if args.output else project.root / "export"
    export_folder(out, EXPORTS[args.format])  # before training: no model made for nothing
    if args.format == "label-studio":
        from deepal.labeling.labelstudio import label_config, tasks

        round_id, item_ids = project.batch()
        if round_id is None:
            raise DeepALError("there is no batch yet: run `deepal query -n 50` first")
        _write(out / "tasks.json", json.dumps(tasks(project, item_ids), indent=1) + "\n")
        _write(out / "label_config.xml", label_config(project))
        print(f"Wrote {len(item_ids)} Label Studio tasks of round {round_id} to "
              f"{out / 'tasks.json'} (labelling config: {out / 'label_config.xml'}). "
              "Import Label Studio's JSON export with: deepal import-labels FILE")
        return 0
    model = None if args.no_model else project.train_and_save(device=args.device,
                                                                threads=args.threads)
    count = project.export_labels(out / "labels.csv")
    print(f"Wrote {count} labels to {out / 'labels.csv'}")
    if model is not None:
        import shutil

        shutil.copyfile(model, out / "model.pt")
        print(f"Trained on them and wrote the model to {out / 'model.pt'}")
    return 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def command_status(args: argparse.Namespace) -> int:
    project = _open(args)
    status = project.status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"{status['n_labeled']} of {status['n_items']} items labeled")
    width = max(len(name) for name in status["per_class"])
    for name, count in status["per_class"].items():
        print(f"  {name:<{width}}  {count}")
    for r in status["rounds"]:
        accuracy = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.3f}"
        print(f"round {r['round']}: {r['strategy']} picked {r['n_queried']} "
              f"(trained on {r['n_labeled']} labels, held-out accuracy {accuracy})")
    if status["batch_size"]:
        print(f"current batch: {status['batch_labeled']} of {status['batch_size']} labeled")
    if not status["has_test_set"]:
        print("no labeled test set (add one with `deepal project init --test`)")
    for line in stopping_lines(status["stopping"]):
        print(line)
    agreed = status["agreement"]
    if agreed["items"]:
        print(f"annotators agree on {agreed['agreeing']} of the {agreed['items']} items "
              f"several of them labelled ({agreed['agreement']:.0%})")
        for conflict in agreed["conflicts"][:20]:
            said = ", ".join(f"{who}: {c}" for who, c in conflict["labels"].items())
            print(f"  conflict on item {conflict['item']}: {said}")
    return 0


def stopping_lines(stopping: dict[str, Any]) -> list[str]:
    """``deepal status``'s lines on when to stop (see :mod:`deepal.labeling.stopping`).

    Examples
    --------
    >>> stopping_lines({"kappas": [], "accuracy_curve": []})
    ['stopping signal: needs two rounds with a trained model']
    """
    kappas = stopping["kappas"]
    if not kappas:
        return ["stopping signal: needs two rounds with a trained model"]
    threshold = stopping["threshold"]
    shown = ", ".join(f"{k['kappa']:.4f}{'*' if k['kappa'] >= threshold else ''}"
                      for k in kappas[-6:])
    verdict = (f"fired at round {stopping['stop_round']} ({stopping['stop_n_labeled']} "
               "labels): more labels are unlikely to change the model much"
               if stopping["stop"] else "not yet")
    lines = [f"stopping signal: agreement (Cohen's kappa) of successive models on "
             f"{stopping['stop_set_size']} stop-set items: {shown} (* at or above "
             f"{threshold}); fires when {stopping['window']} in a row are: {verdict}"]
    gains = [c for c in stopping["accuracy_curve"] if c["gain_per_label"] is not None]
    if gains:
        last = gains[-1]
        lines.append(f"held-out accuracy {last['test_accuracy']:.3f} at {last['n_labeled']} "
                     f"labels, {last['gain_per_label']:+.5f} per label over the last round")
    return lines


def command_label(args: argparse.Namespace) -> int:
    from deepal.labeling.background import NextBatch, background_settings
    from deepal.labeling.requests import check_port
    from deepal.labeling.server import serve

    project = _open(args)
    check_port(args.port)
    if args.review:
        serve(project, port=args.port, token=args.token, review=_review_batch(project))
        return 0
    worker = None
    if not args.no_background:
        settings = background_settings(n=args.n, ahead=args.ahead, strategy=args.strategy,
                                       n_epoch=args.n_epoch, device=args.device,
                                       threads=args.threads)
        worker = NextBatch(project.root, settings)
    try:
        serve(project, port=args.port, token=args.token, next_batch=worker)
    finally:
        if worker is not None:
            worker.close()
    return 0
