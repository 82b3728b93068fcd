"""``python -m mmssl <command>``: data, train, eval, embed, index, search, serve.

Each command is a thin layer over the library; anything it does can be done from Python.
"""

from __future__ import annotations

import argparse
import json
import sys

from mmssl.data.splits import ALL_SPLITS
from mmssl.kinds import EVAL_CODE, EVAL_TASKS, TASK_CODE, TASK_IMAGE_TEXT, TRAIN_RECIPES

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
    names = args.names or list(registry.DEFAULT_CORPORA)
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

    if args.index:
        return _eval_index_queries(args)
    if not args.task:
        raise ValueError("say what to evaluate: --task code|image (a model on a held-out split), or --index NAME "
                         "--queries FILE (an index on your own queries)")
    common = dict(batch_size=args.batch_size, device=args.device, cache_root=_cache_root(args),
                  encoding=args.encoding)
    if args.task == EVAL_CODE and args.queries:
        return _eval_queries(args)
    if args.task == EVAL_CODE:
        results = evaluate_code(args.model, args.split, _corpus_root(args), baselines=not args.no_baselines,
                                group_size=args.group_size, **common)
    else:
        if args.no_baselines:
            print("mmssl eval: --no-baselines has no effect for --task image (its only baseline, random, "
                  "costs nothing)", file=sys.stderr)
        results = evaluate_image(args.model, args.split, args.corpora or None, _corpus_root(args), **common)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def _eval_queries(args) -> int:
    """``eval --task code --queries FILE``: full-corpus ranking of developer-style queries."""
    from mmssl.eval.queries import (
        INDEX_TEXTS,
        evaluate_queries,
        format_query_table,
        load_queries,
        minilm_system,
        model_system,
    )

    systems = [] if args.no_baselines else [minilm_system(_cache_root(args), args.device or "cpu")]
    if args.model:
        embeddings = _cache_root(args).parent / "code_search" if args.data_dir else None
        systems.append(model_system(args.model, embeddings, batch_size=args.batch_size, device=args.device,
                                    feature_cache_root=_cache_root(args)))
    results = evaluate_queries(load_queries(args.queries), systems, corpus_root=_corpus_root(args),
                               texts=[args.index_text] if args.index_text else INDEX_TEXTS, fusion=args.fusion)
    print(json.dumps(results, indent=2) if args.json else format_query_table(results))
    return 0


def _eval_index_queries(args) -> int:
    """``eval --index NAME --queries FILE``: an index's model and baselines on the user's own queries."""
    from mmssl.eval.user_queries import format_user_table, read_user_queries
    from mmssl.index import index_folder, load_index
    from mmssl.index.user_eval import evaluate_index_queries
    from mmssl.model import load_model

    if not args.queries:
        raise ValueError("--index needs --queries FILE: TSV query<TAB>expected[;expected...] or JSONL "
                         '{"query": ..., "expected": [...]} (the page\'s feedback file works too)')
    if args.task or args.model:
        raise ValueError("--index evaluates the index's own model: leave out --task and --model "
                         "(compare another model with --baseline-model PATH)")
    queries, info = read_user_queries(args.queries)
    folder = index_folder(args.index)
    manifest = load_index(folder).manifest
    model = load_model(manifest.model_path, device=args.device, batch_size=args.batch_size,
                       encoding=manifest.encoding)  # queries run as the items did
    index = load_index(folder, model=model)
    results = evaluate_index_queries(index, model, queries, baselines=not args.no_baselines,
                                     baseline_model=args.baseline_model, cache_root=_cache_root(args),
                                     index_name=args.index)
    if info["no_positive"]:
        results["notes"].append(f"{info['no_positive']} feedback queries left out: every vote on them is down")
    print(json.dumps(results, indent=2) if args.json else format_user_table(results))
    return 0


def _cmd_embed(args) -> int:
    from mmssl.embed import embed_file
    from mmssl.model import load_model

    model = load_model(args.model, device=args.device, batch_size=args.batch_size, encoding=args.encoding)
    output, shape = embed_file(model, args.modality, args.input, args.output)
    print(f"wrote {shape[0]} x {shape[1]} float32 embeddings to {output} ({model.kind} model {model.fingerprint})")
    return 0


def _cmd_serve(args) -> int:
    from mmssl.app import AppConfig, serve

    config = AppConfig(host=args.host, port=args.port, image_model=args.image_model, code_model=args.code_model,
                       auth=args.auth, share=args.share, allow_folders=args.allow_folder or [],
                       allow_replace=args.allow_replace, max_upload_mb=args.max_upload_mb,
                       build_missing=args.build_missing, max_k=args.max_k, threads=args.threads)
    if args.index:
        config.indexes = args.index
    serve(config)
    return 0


RECIPE_HELP = {TASK_IMAGE_TEXT: "image–text dual encoder (CLIP-style)", TASK_CODE: "text–code dual encoder (CodeSearchNet-style)"}


def _train_base(recipe: str):
    from mmssl.recipes.dual_encoder import DualEncoderRun, code_run_defaults

    return code_run_defaults() if TRAIN_RECIPES[recipe] == TASK_CODE else DualEncoderRun()


def _cmd_train(args) -> int:
    from mmssl.config import resolve_config
    from mmssl.distributed import world_info
    from mmssl.recipes.dual_encoder import DualEncoderRun, train_dual_encoder

    if args.data:
        return _train_on_user_data(args)
    run = resolve_config(DualEncoderRun, args, base=_train_base(args.recipe))
    output = train_dual_encoder(run)
    if world_info().rank == 0:  # under torchrun only rank 0 saves
        print(f"model saved to {output}")
    return 0


USER_TRAIN_FLAGS = "cfg:train."
DEFAULT_START = {"clip": "models/clip-default", "code": "models/code-default"}


def _train_on_user_data(args) -> int:
    """``train clip|code --data folder:PATH|project:PATH|feedback:INDEX`` (repeatable: the data mix): fine-tune
    the current model on the user's data, into a new folder beside it (only ``--output`` and ``--train.*``
    flags apply)."""
    from pathlib import Path

    from mmssl.config import resolve_config
    from mmssl.data.user import DataSpec
    from mmssl.recipes.finetune import finetune_dual_encoder, user_train_config
    from mmssl.train.config import TrainConfig

    specs = [DataSpec.parse(text) for text in args.data]
    ignored = sorted(k[4:] for k, v in vars(args).items()
                     if k.startswith("cfg:") and v is not None and k != "cfg:output" and not k.startswith(USER_TRAIN_FLAGS))
    if ignored:
        raise ValueError(f"--data fine-tunes the model as it is; {', '.join(ignored)} cannot change (only --output "
                         "and --train.* apply)")
    start = Path(args.init_from or DEFAULT_START[args.recipe])
    output = Path(getattr(args, "cfg:output") or start.parent / f"{start.name}-{specs[0].path.name}")
    if output.exists():
        raise ValueError(f"{output} exists; the fine-tuned model goes to a new folder: pass --output NEW_FOLDER")
    corpora = [_user_training_corpus(spec, args.recipe) for spec in specs]
    overrides = {k[len(USER_TRAIN_FLAGS):]: v for k, v in vars(args).items() if k.startswith(USER_TRAIN_FLAGS) and
                 v is not None}
    train = resolve_config(TrainConfig, overrides=overrides, base=user_train_config(output))
    saved = finetune_dual_encoder(start, corpora, output, train)
    print(f"model saved to {saved} (started from {start}, which is unchanged). Compare them on your queries: "
          f"index with each (`mmssl index build NAME --model {saved} ...`), then `mmssl eval --index NAME "
          "--queries FILE`")
    return 0


USER_DATA_KINDS = {"clip": ("folder", TASK_IMAGE_TEXT), "code": ("project", TASK_CODE)}


def _user_training_corpus(spec, recipe: str) -> str:
    """One ``--data`` spec written as a corpus (its kind checked against the recipe); the corpus name."""
    from mmssl.data.user import user_corpus
    from mmssl.index.feedback_pairs import feedback_corpus

    folder_kind, task = USER_DATA_KINDS[recipe]
    if spec.kind == "feedback":
        corpus, report, model_kind = feedback_corpus(spec)
        if model_kind != task:
            raise ValueError(f"--data feedback:{spec.path} holds votes on a {model_kind} index; train it with "
                             f"`mmssl train {'code' if model_kind == TASK_CODE else 'clip'}`")
        print(f"[mmssl] feedback on {spec.path}: {report.pairs['train']} 👍 pairs to train on, "
              f"{report.pairs['valid'] + report.pairs['test']} held out ({report.extra['queries']} queries, split by "
              f"query){'; ' + report.skipped_line() if report.skipped else ''}")
        return corpus
    if spec.kind != folder_kind:
        raise ValueError(f"train {recipe} --data takes {folder_kind}:PATH or feedback:INDEX, not {spec.kind}:PATH")
    corpus, report = user_corpus(spec)
    print(f"[mmssl] {spec.path}: {report.pairs['train']} training pairs ({report.pairs}), corpus {corpus}")
    return corpus


def _pretrain_encoder(args, run_class, defaults, pretrain) -> int:
    """``pretrain`` / ``contrastive``: resolve the method's run config, train, say how to use the encoder."""
    from mmssl.config import resolve_config

    run = resolve_config(run_class, args, base=defaults(args.method))
    if run.method != args.method:
        raise ValueError(f"--method {run.method!r} contradicts the command's method {args.method!r}")
    print(f"pretrained encoder in {pretrain(run)} (use it as TowerConfig(name={run.encoder.name!r}, "
          f"pretrained=<that folder>))")
    return 0


def _cmd_pretrain(args) -> int:
    from mmssl.recipes.pretext import PretextRun, pretext_run_defaults, pretrain

    return _pretrain_encoder(args, PretextRun, pretext_run_defaults, pretrain)


def _cmd_contrastive(args) -> int:
    from mmssl.recipes.contrastive import ContrastiveRun, contrastive_run_defaults, pretrain_contrastive

    return _pretrain_encoder(args, ContrastiveRun, contrastive_run_defaults, pretrain_contrastive)


def _index_sources(args, report=None):
    """(items, source) for ``index build``: exactly one of the source flags (skipped images go to ``report``)."""
    from mmssl.index import code_corpus_items, code_folder_items, image_corpus_items, image_folder_items

    if args.images:
        return image_folder_items(args.images, report)
    if args.project:
        return code_folder_items(args.project, text=args.index_text, require_docstring=args.documented_only)
    if args.corpus == "code":
        return code_corpus_items(args.split, text=args.index_text)
    if args.corpus:
        return image_corpus_items(args.corpus, args.split)
    raise ValueError("say what to index: --images FOLDER, --project FOLDER or --corpus NAME")


def _cmd_index(args) -> int:
    from mmssl.index import build_index, index_folder, load_index
    from mmssl.model import load_model

    if args.index_command == "build":
        from mmssl.index.build import build_world
        from mmssl.train.trainer import resolve_device

        rank, _ = build_world()  # under torchrun: this process embeds its shard, rank 0 merges
        model = load_model(args.model, device=resolve_device("auto"), encoding=args.encoding)  # CUDA: this rank's GPU
        from mmssl.data.report import CorpusReport

        skipped = CorpusReport("folder")
        items, source = _index_sources(args, skipped)
        index = build_index(args.name, model, items, factory=args.factory, batch_size=args.batch_size, source=source,
                            chunk_size=args.chunk_size)
        if rank != 0:
            return 0
        if skipped.skipped_line():
            print(skipped.skipped_line())
    else:
        index = load_index(index_folder(args.name))
        if args.index_command == "refresh":
            model = load_model(index.manifest.model_path, encoding=index.manifest.encoding)
            index = load_index(index_folder(args.name), model=model)
            report = index.refresh()
            print(f"refresh: {len(report.added)} added, {len(report.reembedded)} re-embedded, "
                  f"{len(report.removed)} removed, {report.unchanged} unchanged")
        elif args.index_command == "calibrate":
            _calibrate(index, args)
    m = index.manifest
    print(f"{args.name}: {m.count} {m.kind} items, dim {m.dim}, {m.factory}, model {m.model_path} ({m.model_fingerprint}, "
          f"{m.encoding})")
    return 0


def _search_mode(args, kind: str) -> str:
    """--dense-only / --lexical-only / --mode; by default code indexes rank hybrid, image indexes dense."""
    if args.dense_only and args.lexical_only:
        raise ValueError("--dense-only and --lexical-only exclude each other; pass one (or neither, for hybrid)")
    if args.dense_only or args.lexical_only:
        return "dense" if args.dense_only else "lexical"
    return args.mode or ("hybrid" if kind == "code" else "dense")


def _cmd_search(args) -> int:
    from mmssl.index import index_folder, load_index
    from mmssl.index.code_filters import CodeFilter
    from mmssl.index.hybrid import read_query_file, search_texts
    from mmssl.model import load_model

    if args.image is None and (args.query is None) == (args.queries is None):
        raise ValueError("pass exactly one of --query \"...\" or --queries FILE (or --image FILE)")
    if args.image is not None and args.queries is not None:
        raise ValueError("--image searches with one example image; give its text modifier with --query, not --queries")
    if args.image is None and args.query is not None and not args.query.strip():
        raise ValueError("the query is empty; type what you are looking for, e.g. --query \"a red fire truck\"")
    texts = [args.query or ""] if args.queries is None else read_query_file(args.queries)
    folder = index_folder(args.index)
    manifest = load_index(folder).manifest
    model = load_model(args.model or manifest.model_path, encoding=manifest.encoding)  # queries run as the items did
    index = load_index(folder, model=model)  # checks the model is the one that built the index
    mode = _search_mode(args, index.manifest.kind)
    options = {"mode": mode} if args.lexical_weight is None else {"mode": mode, "lexical_weight": args.lexical_weight}
    code_filter = CodeFilter(args.package, args.module, args.path_glob, args.kind, args.exclude_tests)
    if not code_filter.is_empty:
        if index.manifest.kind != "code":
            raise ValueError("--package/--module/--path/--kind/--exclude-tests filter code indexes; "
                             f"{args.index} holds {index.manifest.kind} items")
        options["filter"] = code_filter.as_filter()
    if args.collapse and index.manifest.kind == "code":
        raise ValueError(f"--collapse folds near-duplicate images; {args.index} holds code")
    if index.manifest.kind == "code":
        if args.image is not None:
            raise ValueError(f"--image searches image indexes; {args.index} holds code")
        results = search_texts(index, model, texts, k=args.k, **options)
    else:
        results = _search_images(index, model, texts, args.k, args.image, options, args.collapse)
    if args.collapse:  # each query's groups: the shown hit, then its near-duplicates
        results, similar = [[g.hit for g in q] for q in results], [[g.similar for g in q] for q in results]
    else:
        similar = [[[] for _ in hits] for hits in results]
    if args.json:
        def hit_dicts(hits, folded):
            return [{**h.to_dict(), "similar": [s.to_dict() for s in more]} if args.collapse else h.to_dict()
                    for h, more in zip(hits, folded)]

        if args.queries is None:
            print(json.dumps(hit_dicts(results[0], similar[0]), ensure_ascii=False, indent=2))
        else:  # one object a line, in query order
            for text, hits, folded in zip(texts, results, similar):
                print(json.dumps({"query": text, "hits": hit_dicts(hits, folded)}, ensure_ascii=False))
        return 0
    for text, hits, folded in zip(texts, results, similar):
        if args.queries is not None:
            print(f"query: {text}")
        for rank, (h, more) in enumerate(zip(hits, folded), 1):
            label = h.metadata.get("func_name") or h.metadata.get("caption") or h.metadata.get("text") or ""
            line = f":{h.metadata['line']}" if h.metadata.get("line") else ""
            print(f"{rank:>3}. {h.score:.3f}  {h.metadata.get('path', '')}{line}  {label}"
                  + (f"  (+{len(more)} similar)" if more else ""))
    return 0


def _search_images(index, model, texts: list[str], k: int, image: str | None, options: dict, collapse: bool = False):
    """Image-index search with query arithmetic (``beach -people``, ``2:cat + hat``) or an example image moved
    by ``texts[0]`` ("this, but red"); a lexical ranking reads the added terms' words. With ``collapse`` each
    query's answer is ``k`` groups of near-duplicates (:func:`mmssl.index.dedup.collapsed_page`)."""
    from pathlib import Path

    from mmssl.index.dedup import collapsed_page
    from mmssl.index.hybrid import hybrid_search
    from mmssl.index.query_terms import parse_query, query_vectors, with_example

    if image is not None:
        if not Path(image).is_file():
            raise FileNotFoundError(f"no image {image}; pass --image PATH of a PNG, JPEG or WebP file")
        modifier = parse_query(texts[0], needs_positive=False) if texts[0].strip() else None
        vectors = with_example(model.encode_image([image])[0], modifier, model.encode_text)[None, :]  # (1, E)
        lexical = [modifier.positive_text if modifier else ""]
    else:
        parsed = [parse_query(text) for text in texts]
        vectors = query_vectors(model.encode_text, parsed)  # (Q, E)
        lexical = [query.positive_text for query in parsed]
    if collapse:
        return [collapsed_page(lambda n, i=i: hybrid_search(index, lexical[i:i + 1], vectors[i:i + 1], n, **options)[0],
                               k)[0] for i in range(len(lexical))]
    return hybrid_search(index, lexical, vectors, k, **options)


def _add_encoding_arg(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--encoding", choices=("fp32", "fast"), default=default,
                        help=f"how the MiniLM towers run: fp32 as trained, fast = truncated shorter in small "
                        f"token-length buckets (bench/encode.py measures both; default {default})")


def _data_arguments(data: argparse.ArgumentParser) -> None:
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    for action, text in (("fetch", "download the offline sources"), ("build", "build corpora (fetches first)"),
                         ("report", "print the table of built corpora")):
        p = data_sub.add_parser(action, help=text)
        p.add_argument("names", nargs="*", help="corpora (default: all but the large ones): emoji clipart "
                       "stamps game-icons code; large: iconsets emoji-artworks")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if action == "build":
            p.add_argument("--force", action="store_true", help="rebuild even if built")
            p.add_argument("--limit", type=int, default=None, help="cap items per corpus (quick look)")
    p = data_sub.add_parser("folder", help="index-ready corpus from your own image folder")
    p.add_argument("path", help="folder of png/jpg/webp images, optional captions.csv (file,caption)")
    p.add_argument("--out", required=True, help="where to write the corpus JSONL")
    data.set_defaults(func=_cmd_data)


def _eval_arguments(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("--model", help="model folder (save_dual_encoder); optional for --task code: "
                          "without it only the baselines run")
    evaluate.add_argument("--task", choices=sorted(EVAL_TASKS),
                          help="code: CodeSearchNet MRR vs BM25/MiniLM/random; image: Recall@K per image corpus "
                          "(leave out with --index)")
    evaluate.add_argument("--index", help="evaluate this index (indexes/NAME or a folder) on your own --queries: "
                          "every query ranked over every item, its model beside BM25, MiniLM (code) and random")
    evaluate.add_argument("--baseline-model", help="--index: also rank the items with this model or spec "
                          "(e.g. open_clip:ViT-B-32:/path/weights.safetensors); it embeds them")
    evaluate.add_argument("--split", default="test", choices=ALL_SPLITS,
                          help="image: 'unseen' scores the held-out icon sets and emoji artworks, plus one "
                          "pooled unseen-style row of their held-out concepts")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.add_argument("--no-baselines", action="store_true", help="code and --index: skip BM25 and MiniLM "
                          "zero-shot (and random)")
    evaluate.add_argument("--corpora", nargs="*", help="image corpora (default: every built one)")
    evaluate.add_argument("--group-size", type=int, default=1000, help="code: pairs per CodeSearchNet group")
    evaluate.add_argument("--queries", help="with --index: your queries, TSV query<TAB>expected[;expected...] or "
                          'JSONL {"query", "expected"} (an image path; for code path or path:function), or a '
                          "feedback file; with --task code: a developer-style query file (JSONL with text, part, "
                          "split, repo, path, func_name; e.g. mmssl/data/devset/code_queries.jsonl): full-corpus "
                          "ranking per part and split instead of the CodeSearchNet protocol")
    evaluate.add_argument("--index-text", choices=("full", "code"), help="code --queries: one index-text variant "
                          "(default: both; full = name + class + signature + docstring + body, code = docstring cut)")
    evaluate.add_argument("--fusion", default="minmax", choices=("minmax", "rrf"),
                          help="code --queries: dense + BM25 fusion of the hybrid rows (weight chosen on dev)")
    evaluate.add_argument("--batch-size", type=int, default=64)
    _add_encoding_arg(evaluate, "fp32")
    evaluate.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when present)")
    evaluate.add_argument("--data-dir", default=None, help="data root holding corpora/ and cache/ "
                          "(default: $MMSSL_DATA_DIR or <project>/data)")
    evaluate.set_defaults(func=_cmd_eval)


def _embed_arguments(embed: argparse.ArgumentParser) -> None:
    embed.add_argument("--model", required=True, help="model folder (save_dual_encoder)")
    embed.add_argument("--modality", required=True, choices=("image", "text", "code"),
                       help="which field/encoder: text = captions and queries")
    embed.add_argument("--input", required=True, help="JSONL with a 'text', 'code' or 'image' field per line, "
                       "or a folder of images (searched recursively)")
    embed.add_argument("--output", required=True, help="where to write the (N, D) float32 .npy")
    embed.add_argument("--batch-size", type=int, default=64)
    _add_encoding_arg(embed, "fp32")
    embed.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when present)")
    embed.set_defaults(func=_cmd_embed)


def _train_arguments(train: argparse.ArgumentParser) -> None:
    recipes = train.add_subparsers(dest="recipe", required=True, metavar="RECIPE")
    from mmssl.config import add_config_args
    from mmssl.recipes.dual_encoder import DualEncoderRun

    for recipe, task in TRAIN_RECIPES.items():
        text = RECIPE_HELP[task]
        p = recipes.add_parser(recipe, help=text)
        wanted = "folder:PATH (images, captions.csv: file,caption)" if recipe == "clip" else \
            "project:PATH (a Python project's documented functions)"
        p.add_argument("--data", action="append", help=f"fine-tune on your own data, {wanted} or feedback:INDEX "
                       "(its 👍 votes), from --from into a new folder (--output; default beside the start); "
                       "repeat it to mix sources; each source's held-out part (by file, or by query) stays unseen")
        p.add_argument("--from", dest="init_from", help=f"--data: the model to start from (default "
                       f"{DEFAULT_START[recipe]})")
        add_config_args(p, DualEncoderRun, base=_train_base(recipe))
    train.set_defaults(func=_cmd_train)


def _pretrain_arguments(pretrain_parser: argparse.ArgumentParser) -> None:
    methods = pretrain_parser.add_subparsers(dest="method", required=True, metavar="METHOD")
    from mmssl.config import add_config_args
    from mmssl.pretext.registry import METHODS
    from mmssl.recipes.pretext import PretextRun, pretext_run_defaults

    for method, spec in METHODS.items():
        add_config_args(methods.add_parser(method, help=spec.description.replace("%", "%%")), PretextRun,
                        base=pretext_run_defaults(method))
    pretrain_parser.set_defaults(func=_cmd_pretrain)


def _contrastive_arguments(contrastive: argparse.ArgumentParser) -> None:
    contrastive_methods = contrastive.add_subparsers(dest="method", required=True, metavar="METHOD")
    from mmssl.config import add_config_args
    from mmssl.recipes.contrastive import METHOD_HELP, ContrastiveRun, contrastive_run_defaults

    for method, text in METHOD_HELP.items():
        add_config_args(contrastive_methods.add_parser(method, help=text), ContrastiveRun,
                        base=contrastive_run_defaults(method))
    contrastive.set_defaults(func=_cmd_contrastive)


def _calibrate(index, args) -> None:
    """``index calibrate``: the "nothing close" threshold of an image index (mmssl.index.closeness)."""
    from mmssl.index.closeness import calibrate_index, corpus_captions
    from mmssl.model import load_model

    if index.manifest.kind == "code":
        raise ValueError(f"{args.name} is a code index; nothing-close calibration is for image indexes")
    model = load_model(index.manifest.model_path, encoding=index.manifest.encoding)
    closeness = calibrate_index(index, model.encode_text, corpus_captions(args.corpus) if args.corpus else None)
    chosen, flat, counts = closeness.report["chosen"], closeness.report["flat_cosine"], closeness.report
    print(f"calibrated on {counts['absent']} absent and {counts['present']} present queries: "
          f"{chosen['absent_flagged']:.0%} of the absent flagged, {chosen['present_kept']:.0%} of the present R@10 "
          f"kept (a flat cosine cut-off: {flat['absent_flagged']:.0%}); wrote {index.folder}/nothing_close.npz")


def _index_arguments(index: argparse.ArgumentParser) -> None:
    index_sub = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    p = index_sub.add_parser("build", help="embed a source with a model and write indexes/NAME atomically "
                             "(resumable; torchrun --nproc_per_node N -m mmssl index build ... shards it)")
    p.add_argument("name", help="index name (indexes/NAME) or a folder path")
    p.add_argument("--model", required=True, help="model folder, e.g. models/clip-default")
    p.add_argument("--images", help="a folder of your images (png/jpg/webp, optional captions.csv)")
    p.add_argument("--project", help="a Python project folder (every function, documented or not)")
    p.add_argument("--documented-only", action="store_true", help="--project: only functions with a docstring "
                   "(CodeSearchNet's rule)")
    p.add_argument("--index-text", default="full", choices=("full", "code"), help="code: what is embedded; full = "
                   "name + class + signature + docstring + body (default), code = the docstring cut (CSN's form)")
    p.add_argument("--corpus", help="a built corpus: emoji, clipart, stamps, game-icons or code")
    p.add_argument("--split", default="test", help="corpus split (default: test)")
    p.add_argument("--factory", help="FAISS factory string (default: Flat / HNSW32 / IVF,PQ by size)")
    p.add_argument("--batch-size", type=int, default=64, help="items per forward pass (batched by token length)")
    _add_encoding_arg(p, "fast")  # mmssl.model.BUILD_ENCODING (not imported: the parser stays light)
    p.add_argument("--chunk-size", type=int, default=4096, help="items per resumable chunk of embeddings "
                   "(re-running an interrupted build reuses finished chunks; the unit of sharding under torchrun)")
    for action, text in (("refresh", "re-embed only what changed (image-folder files, project functions)"),
                         ("info", "print what an index holds")):
        p = index_sub.add_parser(action, help=text)
        p.add_argument("name", help="index name (indexes/NAME) or a folder path")
    p = index_sub.add_parser("calibrate", help="image index: calibrate its \"nothing close\" on captions absent "
                             "from it vs its own captions")
    p.add_argument("name", help="index name (indexes/NAME) or a folder path")
    p.add_argument("--corpus", action="append", help="draw absent queries from this built corpus's train and valid "
                   "captions (repeatable; default: emoji, clipart, stamps, game-icons)")
    index.set_defaults(func=_cmd_index)


def _search_arguments(search: argparse.ArgumentParser) -> None:
    search.add_argument("--index", required=True, help="indexes/NAME (or a name)")
    search.add_argument("--query", help="what to look for; on an image index terms add and subtract: "
                        "\"beach -people\", \"2:cat + hat\"")
    search.add_argument("--image", metavar="FILE", help="image index: find images like this one; --query then "
                        "moves it (\"red\": this image, but red; --query=-text: without text)")
    search.add_argument("--queries", metavar="FILE", help="many queries, one model load: a query a line, or JSONL "
                        "with 'text'; with --json one object per query a line")
    search.add_argument("--mode", default=None, choices=("hybrid", "dense", "lexical"),
                        help="ranking: dense + BM25 fusion, FAISS only, or BM25 only (default: hybrid for code "
                        "indexes, dense for image indexes)")
    search.add_argument("--dense-only", action="store_true", help="same as --mode dense")
    search.add_argument("--lexical-only", action="store_true", help="same as --mode lexical")
    search.add_argument("--lexical-weight", type=float, default=None, help="hybrid: BM25's weight in [0, 1] "
                        "(default: the one chosen on the dev set)")
    search.add_argument("-k", type=int, default=10, help="number of results")
    search.add_argument("--package", default="", help="code: only this package (the index's repo field)")
    search.add_argument("--module", default="", help="code: only this module or its submodules (json, urllib.parse)")
    search.add_argument("--path", dest="path_glob", default="", metavar="GLOB",
                        help="code: only files matching GLOB (a pattern without / matches the file name)")
    search.add_argument("--kind", default="any", choices=("any", "function", "method"),
                        help="code: functions only, methods only, or both")
    search.add_argument("--exclude-tests", action="store_true", help="code: leave out test folders, files and "
                        "test* functions")
    search.add_argument("--model", help="model folder (default: the one recorded in the index manifest)")
    search.add_argument("--collapse", action="store_true", help="image: show the same concept in several artworks, "
                        "icon sets or skin tones once, with \"+N similar\" (JSON: each hit's \"similar\" list)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(func=_cmd_search)


def _serve_arguments(serve: argparse.ArgumentParser) -> None:
    from mmssl.app.config import AUTH_ENV, DEFAULT_CODE_INDEX, DEFAULT_IMAGE_INDEX, AppConfig

    defaults = AppConfig()
    serve.add_argument("--host", default=defaults.host, help="interface to bind (default: 127.0.0.1, this machine "
                       "only; 0.0.0.0 opens it to the network)")
    serve.add_argument("--port", type=int, default=defaults.port)
    serve.add_argument("--index", action="append", metavar="NAME_OR_FOLDER",
                       help=f"an index to load (repeatable; default: {DEFAULT_IMAGE_INDEX} and {DEFAULT_CODE_INDEX})")
    serve.add_argument("--image-model", default=defaults.image_model, help="model for image indexes' queries")
    serve.add_argument("--code-model", default=defaults.code_model, help="model for code indexes' queries")
    serve.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                       help=f"require this login (default: ${AUTH_ENV} if set, else no login)")
    serve.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    serve.add_argument("--allow-folder", action="append", metavar="FOLDER",
                       help="a folder users may index from the Indexes tab (repeatable; default: none)")
    serve.add_argument("--allow-replace", action="store_true", help="let users replace this server's own indexes "
                       "(the demo ones and those given with --index) from the Indexes tab; default: protected")
    serve.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_mb,
                       help="the largest upload accepted, in MB")
    serve.add_argument("--build-missing", action="store_true",
                       help=f"first build the default indexes ({DEFAULT_IMAGE_INDEX}: emoji + clipart, "
                       f"{DEFAULT_CODE_INDEX}: the code corpus) if they are missing")
    serve.add_argument("--max-k", type=int, default=defaults.max_k, help="the most results a query may ask for")
    serve.add_argument("--threads", type=int, default=defaults.threads,
                       help="torch/FAISS threads while serving (default 1: one query is too small to split, and "
                       "concurrent searches use the other cores; 0 = library defaults)")
    serve.set_defaults(func=_cmd_serve)


# every command: (help, the function that adds its arguments). Only the command being run gets its
# arguments (and imports what they need), so a light command stays light: `search --help` loads no
# recipe, pretext or contrastive module and no torch.
COMMANDS = {
    "data": ("fetch sources and build corpora", _data_arguments),
    "eval": ("evaluate a model on a held-out split, with its baselines", _eval_arguments),
    "embed": ("embed a JSONL file or an image folder with a model, to a .npy file", _embed_arguments),
    "train": ("train a dual encoder (same as scripts/train_clip.py, scripts/train_code.py)", _train_arguments),
    "pretrain": ("pretrain a tower with a pretext task (same as scripts/pretrain.py)", _pretrain_arguments),
    "contrastive": ("pretrain a tower with a contrastive method (same as scripts/pretrain_contrastive.py)",
                    _contrastive_arguments),
    "index": ("build, refresh or describe a FAISS index under indexes/", _index_arguments),
    "search": ("search an index with a text query", _search_arguments),
    "serve": ("serve the search app (images, code, indexes)", _serve_arguments),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``mmssl`` parser. With ``argv``, only the command it names gets its arguments (the others are
    listed with their help); without, every command does."""
    parser = argparse.ArgumentParser(prog="mmssl", description="Self-supervised multimodal retrieval: "
                                     "corpora, training, evaluation, indexes and the search app.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for name, (text, add_arguments) in COMMANDS.items():
        command = sub.add_parser(name, help=text)
        if wanted is None or wanted == name:
            add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as e:
        print(f"mmssl {args.command}: error: {e}", file=sys.stderr)
        return 1
