"""``python -m mmssl <command>``: data, train, eval, embed, index, search, serve.

Each command is a thin layer over the library; anything it does can be done from Python.
Commands whose issue has not landed yet say so and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

NOT_YET = {
    "train": "training the dual encoders (scripts/train_clip.py, scripts/train_code.py)",
    "eval": "evaluation of a trained model (Recall@K, CodeSearchNet MRR, BM25 and MiniLM baselines)",
    "embed": "embedding JSONL/folders with a trained model",
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


def _cmd_serve(args) -> int:
    from mmssl.app.browser import serve

    serve(host=args.host, port=args.port)
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
