"""``python -m mmssl <command>``: data, train, eval, embed, index, search, serve.

Each command is a thin layer over the library; anything it does can be done from Python.
Commands whose issue has not landed yet say so and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

NOT_YET = {
    "index": "building FAISS indexes",
    "search": "searching a FAISS index",
}


def _not_yet(command: str):
    def run(args) -> int:
        print(f"mmssl {command}: not available yet — {NOT_YET[command]} is planned but not built in this "
              "version. See README, 'Status'.", file=sys.stderr)
        return 2
    return run


def _cmd_data(args) -> int:
    from mmssl.data import build as registry
    from mmssl.data.report import CorpusReport, format_reports

    if args.data_command == "folder":
        from mmssl.data.folder import build_folder_corpus

        report = build_folder_corpus(args.path, args.out)
        print(format_reports([report]))
        for reason, examples in report.examples.items():
            print(f"  skipped ({reason}): {', '.join(examples)}")
        return 0
    names = args.names or list(registry.CORPORA)
    if args.data_command == "fetch":
        registry.fetch(names)
        print(f"fetched: {', '.join(names)}")
        return 0
    if args.data_command == "build":
        reports = registry.build(names, force=args.force, limit=args.limit)
    else:  # report
        from mmssl.data.paths import corpus_dir

        reports = [CorpusReport.load(corpus_dir(n) / "report.json") for n in names
                   if (corpus_dir(n) / "report.json").exists()]
        missing = [n for n in names if not (corpus_dir(n) / "report.json").exists()]
        if missing:
            print(f"not built yet: {', '.join(missing)} (python -m mmssl data build {' '.join(missing)})")
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False))
    else:
        print(format_reports(reports))
    return 0


def _corpus_root(args):
    from pathlib import Path

    return Path(args.data_dir).expanduser() / "corpora" if args.data_dir else None


def _cache_root(args):
    from pathlib import Path

    return Path(args.data_dir).expanduser() / "cache" / "features" if args.data_dir else None


def _cmd_eval(args) -> int:
    from mmssl.eval.evaluate import evaluate_code, evaluate_image, format_table

    common = dict(batch_size=args.batch_size, device=args.device, cache_root=_cache_root(args))
    if args.task == "code":
        results = evaluate_code(args.model, args.split, _corpus_root(args), baselines=not args.no_baselines,
                                group_size=args.group_size, **common)
    else:
        if args.no_baselines:
            print("mmssl eval: --no-baselines has no effect for --task image (its only baseline, random, "
                  "costs nothing)", file=sys.stderr)
        results = evaluate_image(args.model, args.split, args.corpora or None, _corpus_root(args), **common)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def _cmd_embed(args) -> int:
    from mmssl.embed import embed_file
    from mmssl.model import load_model

    model = load_model(args.model, device=args.device, batch_size=args.batch_size)
    output, shape = embed_file(model, args.modality, args.input, args.output)
    print(f"wrote {shape[0]} x {shape[1]} float32 embeddings to {output} ({model.kind} model {model.fingerprint})")
    return 0


def _cmd_serve(args) -> int:
    from mmssl.app.browser import serve

    serve(host=args.host, port=args.port)
    return 0


TRAIN_RECIPES = {"clip": "image–text dual encoder (CLIP-style)", "code": "text–code dual encoder (CodeSearchNet-style)"}


def _train_base(recipe: str):
    from mmssl.train.dual_encoder import DualEncoderRun, code_run_defaults

    return code_run_defaults() if recipe == "code" else DualEncoderRun()


def _cmd_train(args) -> int:
    from mmssl.config import resolve_config
    from mmssl.train.dual_encoder import DualEncoderRun, train_dual_encoder

    run = resolve_config(DualEncoderRun, args, base=_train_base(args.recipe))
    print(f"model saved to {train_dual_encoder(run)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmssl", description="Self-supervised multimodal retrieval: "
                                     "corpora, training, evaluation, indexes and the search app.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="fetch sources and build corpora")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    for action, text in (("fetch", "download the offline sources"), ("build", "build corpora (fetches first)"),
                         ("report", "print the table of built corpora")):
        p = data_sub.add_parser(action, help=text)
        p.add_argument("names", nargs="*", help="corpora (default: all): emoji clipart stamps game-icons code")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if action == "build":
            p.add_argument("--force", action="store_true", help="rebuild even if built")
            p.add_argument("--limit", type=int, default=None, help="cap items per corpus (quick look)")
    p = data_sub.add_parser("folder", help="index-ready corpus from your own image folder")
    p.add_argument("path", help="folder of png/jpg/webp images, optional captions.csv (file,caption)")
    p.add_argument("--out", required=True, help="where to write the corpus JSONL")
    data.set_defaults(func=_cmd_data)

    evaluate = sub.add_parser("eval", help="evaluate a model on a held-out split, with its baselines")
    evaluate.add_argument("--model", help="model folder (save_dual_encoder); optional for --task code: "
                          "without it only the baselines run")
    evaluate.add_argument("--task", required=True, choices=("code", "image"),
                          help="code: CodeSearchNet MRR vs BM25/MiniLM/random; image: Recall@K per image corpus")
    evaluate.add_argument("--split", default="test", choices=("train", "valid", "test"))
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.add_argument("--no-baselines", action="store_true", help="code: skip BM25 and MiniLM zero-shot")
    evaluate.add_argument("--corpora", nargs="*", help="image corpora (default: every built one)")
    evaluate.add_argument("--group-size", type=int, default=1000, help="code: pairs per CodeSearchNet group")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when present)")
    evaluate.add_argument("--data-dir", default=None, help="data root holding corpora/ and cache/ "
                          "(default: $MMSSL_DATA_DIR or <project>/data)")
    evaluate.set_defaults(func=_cmd_eval)

    embed = sub.add_parser("embed", help="embed a JSONL file or an image folder with a model, to a .npy file")
    embed.add_argument("--model", required=True, help="model folder (save_dual_encoder)")
    embed.add_argument("--modality", required=True, choices=("image", "text", "code"),
                       help="which field/encoder: text = captions and queries")
    embed.add_argument("--input", required=True, help="JSONL with a 'text', 'code' or 'image' field per line, "
                       "or a folder of images (searched recursively)")
    embed.add_argument("--output", required=True, help="where to write the (N, D) float32 .npy")
    embed.add_argument("--batch-size", type=int, default=64)
    embed.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when present)")
    embed.set_defaults(func=_cmd_embed)

    train = sub.add_parser("train", help="train a dual encoder (same as scripts/train_clip.py, scripts/train_code.py)")
    recipes = train.add_subparsers(dest="recipe", required=True, metavar="RECIPE")
    from mmssl.config import add_config_args
    from mmssl.train.dual_encoder import DualEncoderRun

    for recipe, text in TRAIN_RECIPES.items():
        p = recipes.add_parser(recipe, help=text)
        add_config_args(p, DualEncoderRun, base=_train_base(recipe))
    train.set_defaults(func=_cmd_train)

    for name, text in NOT_YET.items():
        p = sub.add_parser(name, help=f"{text} (not yet)")
        p.set_defaults(func=_not_yet(name))

    serve = sub.add_parser("serve", help="serve the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7860)
    serve.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in NOT_YET:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as e:
        print(f"mmssl {args.command}: error: {e}", file=sys.stderr)
        return 1
