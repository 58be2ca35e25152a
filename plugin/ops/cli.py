"""The ``ltrr`` command line.

Errors we raise on purpose print as one clear message and exit 1; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ltrr.query_plans.catalogs
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.node import LocalNode, NodeConfig
from ltrr.plugin.ops.replay.loop import LEARNERS as REPLAY_LEARNERS
from ltrr.plugin.ops.simulate.lineup import DEFAULT_LINEUP
from ltrr.plugin.serve.body import BODY_SECONDS
from ltrr.plugin.serve.server import UPSTREAM_SECONDS

if TYPE_CHECKING:
    from ltrr.plugin.ops.simulate.run import SimulationConfig

# The catalogs shipped with the package (music.yml, beir.yml), wherever it is installed.
SHIPPED_CATALOGS = Path(ltrr.query_plans.catalogs.__file__).resolve().parent


def _say(message: str) -> None:
    print(message, flush=True)


def _opensearch(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "port": args.port,
        "heap": getattr(args, "heap", "1g"),
        "security": args.security,
    }
    if getattr(args, "plugin_dir", None) is not None:
        options["plugin_dir"] = args.plugin_dir
    node = LocalNode(NodeConfig(**options))
    if args.action == "up":
        node.up(say=_say)
        print(node.status())
    elif args.action == "down":
        node.down(say=_say)
    elif args.action == "status":
        print(node.status())
        return 0 if node.is_running() else 3
    elif args.action == "logs":
        print(node.log_lines(args.lines), end="")
        if args.follow:
            try:
                for line in node.follow_log():
                    print(line, end="", flush=True)
            except KeyboardInterrupt:
                pass
    return 0


def default_data_dir(listen: str) -> Path:
    port = listen.rpartition(":")[2] or "9250"
    return Path.home() / ".local" / "state" / "ltrr" / f"proxy-{port}"


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from ltrr.plugin.learn.tokens import SECRET_ENV, secret
    from ltrr.plugin.serve.server import Limits, parse_listen, serve
    from ltrr.plugin.serve.workers import bind, inherited, run_workers, worker_data_dir

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    limits = Limits(
        max_body=args.max_body_bytes,
        max_msearch_lines=args.max_msearch_lines,
        body_seconds=args.body_timeout,
        upstream_seconds=args.upstream_timeout,
        open_decisions_bytes=args.max_open_decisions_mb * 1024 * 1024,
    )
    data_dir = args.data_dir or default_data_dir(args.listen)
    worker = inherited()
    if worker is None:
        sock = bind(*parse_listen(args.listen))
        if args.workers > 1:
            # One secret for all: feedback may reach another worker than its search did.
            os.environ.setdefault(SECRET_ENV, secret(data_dir))
            return run_workers(sock, args.workers, sys.argv[1:])
        index = 0
    else:
        sock, index = worker
    main = serve(
        args.catalog,
        args.opensearch,
        args.listen,
        limits=limits,
        ready=_say if index == 0 else None,
        data_dir=worker_data_dir(data_dir, index, args.workers),
        seed=args.seed,
        state_interval=args.merge_seconds,
        simulated_clock=args.simulated_clock,
        sock=sock,
        ca_file=args.opensearch_ca,
        ubi_queries=not args.no_ubi_queries,
        retention_days=args.retention_days,
    )
    try:
        import uvloop  # a faster event loop where it exists (not on Windows)
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
    return 0


def _catalog(args: argparse.Namespace) -> int:
    from ltrr.query_plans.catalog import validate_catalog

    failed = 0
    for path in args.paths:
        errors = validate_catalog(path)
        for error in errors:
            print(error, file=sys.stderr)
        if errors:
            failed += 1
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


def _bench(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.bench_overhead import overhead

    print(
        overhead(
            args.catalog, args.opensearch, args.queries, args.warmup, args.seed, tuple(args.hybrid)
        )
    )
    return 0


def _memory_predict(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.predict import predict_memory

    def progress(done: int, total: int) -> None:
        print(f"\r  {done}/{total} documents", end="", file=sys.stderr, flush=True)

    counts = predict_memory(args.catalog, args.opensearch, progress=progress)
    print(file=sys.stderr)
    print(
        f"{counts['updated']} of {counts['documents']} documents got predicted Q2E scores "
        f"({counts['without_metadata']} had no name or phrase to predict from)"
    )
    return 0


def _bench_feedback(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.bench_feedback import FeedbackBenchConfig, feedback, format_report

    config = FeedbackBenchConfig(
        opensearch=args.opensearch,
        searches=args.searches,
        events=args.events,
        concurrency=args.concurrency,
        batches=tuple(args.batch),
        probes=args.probes,
        merge_seconds=args.merge_seconds,
        seed=args.seed,
    )
    print(format_report(feedback(config)))
    return 0


def _bench_soak(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.bench_soak import SoakConfig, format_report, soak

    config = SoakConfig(
        opensearch=args.opensearch, seconds=args.seconds, clients=args.clients, seed=args.seed
    )
    print(format_report(soak(config)))
    return 0


def _require_source(args: argparse.Namespace) -> None:
    if args.source is None:
        raise LtrrError(
            "where are the HetRec Last.fm 2K files? pass --source DIR_OR_ZIP or set "
            "LTRR_LASTFM_SOURCE (the official file is hetrec2011-lastfm-2k.zip from GroupLens)"
        )


def _data_load(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.data.beir import read_beir

    data = read_beir(args.path, args.split)
    for key, value in data.summary().items():
        print(f"{key}: {value}")
    return 0


def _data_build(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.data.music import build_music

    _require_source(args)
    summary = build_music(args.source, args.out, seed=args.seed)
    print(f"music benchmark written to {args.out}")
    for key in ("documents", "queries_by_intent", "judgments_by_grade"):
        if key in summary:
            print(f"  {key}: {summary[key]}")
    return 0


def _data_index(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.data.beir import read_beir
    from ltrr.plugin.ops.simulate.run import prepare_index
    from ltrr.query_plans.catalog import load_catalog

    catalog = load_catalog(args.catalog)
    data = read_beir(args.dataset)
    prepare_index(
        args.opensearch,
        catalog,
        data,
        _say,
        progress=True,
        checkpoint=args.checkpoint,
        index=args.index,
    )
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.replay.bench import ReplayConfig, format_results, run_replay

    if args.latency_every < 0:
        raise LtrrError(f"--latency-every must be >= 0, got {args.latency_every}")
    config = ReplayConfig(
        catalog=args.catalog,
        dataset=args.dataset,
        sessions=args.sessions,
        seeds=tuple(args.seeds),
        learners=tuple(args.learner),
        held_out=args.held_out,
        click_model=args.click_model,
        k=args.k,
        opensearch=args.opensearch,
        index=args.index,
        work_dir=args.work_dir,
        latency_every=args.latency_every,
    )
    table = format_results(run_replay(config, _say))
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0


def _simulation_config(args: argparse.Namespace) -> SimulationConfig:
    """``ltrr simulate``'s arguments as a config (``--seeds`` replaces its seed and folder)."""
    from ltrr.plugin.ops.simulate.run import SimulationConfig

    return SimulationConfig(
        catalog=args.catalog,
        dataset=args.dataset,
        sessions=args.sessions,
        policies=tuple(args.policy),
        seed=args.seed,
        click_model=args.click_model,
        k=args.k,
        opensearch=args.opensearch,
        listen=args.listen,
        work_dir=args.work_dir,
        record_candidates=args.record_candidates,
        index=args.index,
        rerank_model=args.rerank_model,
    )


def _simulate(args: argparse.Namespace) -> int:
    import asyncio

    from ltrr.plugin.ops.simulate.report import save_runs, simulation_report
    from ltrr.plugin.ops.simulate.run import simulate
    from ltrr.plugin.ops.simulate.summary import format_table, summarize

    if args.seeds:
        if args.report is not None or args.record_candidates:
            raise LtrrError(
                "--seeds prints one table over the seeds: drop --report and "
                "--record-candidates, or run one --seed"
            )
        return _simulate_seeds(args)
    config = _simulation_config(args)
    result = asyncio.run(simulate(config, _say))
    save_runs(result.runs, args.work_dir / "runs.json")
    if "linucb" in result.targets:
        from ltrr.plugin.ops.simulate.reference import reference_note

        try:
            line = reference_note(
                args.catalog, args.opensearch, result.targets["linucb"][0], result.started
            )
        except LtrrError as exc:
            line = f"Reference check not made: {exc}"
        _say(line)
        result.notes.append(line)
    print(format_table(summarize(result.runs, _oracle(result.runs)), args.k))
    if args.report is not None:
        path = simulation_report(
            result.runs, args.report, k=args.k, oracle=_oracle(result.runs), notes=result.notes
        )
        print(f"report: {path}")
    return 0


def _simulate_seeds(args: argparse.Namespace) -> int:
    """One simulation per seed (each on fresh copies), then the table over the seeds."""
    import asyncio
    import dataclasses

    from ltrr.plugin.ops.data.beir import read_beir
    from ltrr.plugin.ops.replay.bench import split_queries
    from ltrr.plugin.ops.simulate.report import save_runs
    from ltrr.plugin.ops.simulate.run import simulate
    from ltrr.plugin.ops.simulate.seeds import format_seed_table, seed_table
    from ltrr.plugin.ops.simulate.summary import format_table, summarize

    base = _simulation_config(args)
    runs = {}
    for seed in args.seeds:
        config = dataclasses.replace(base, seed=seed, work_dir=args.work_dir / f"seed-{seed}")
        result = asyncio.run(simulate(config, _say))
        save_runs(result.runs, config.work_dir / "runs.json")
        print(f"seed {seed}")
        print(format_table(summarize(result.runs, _oracle(result.runs)), args.k))
        runs[seed] = result.runs
    _, held_out = split_queries(sorted(read_beir(args.dataset).qrels), args.held_out)
    table = format_seed_table(seed_table(runs, held_out), args.seeds)
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0


def _oracle(runs: Sequence[object]) -> str | None:
    return "oracle" if any(getattr(r, "name", None) == "oracle" for r in runs) else None


def _rollout(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.client import Cluster
    from ltrr.plugin.ops.live.read import parse_since, read_period
    from ltrr.plugin.ops.rollout import compare, format_comparison
    from ltrr.query_plans.catalog import load_catalog

    since = parse_since(args.since)
    targets = list(args.target)
    if args.catalog is not None:  # its decisions are logged under its first target
        targets.append(load_catalog(args.catalog).targets[0])
    cluster = Cluster(args.opensearch)
    try:
        period = read_period(cluster, since, targets=targets)
    finally:
        cluster.close()
    print(format_comparison(compare(period.decisions, period.events, event_type=args.event_type)))
    return 0


def _rollout_replay(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.data.beir import read_beir
    from ltrr.plugin.ops.replay.bench import split_queries
    from ltrr.plugin.ops.replay.capture import Capture
    from ltrr.plugin.ops.replay.rollout import baseline_sizes, format_runs, replay_rollout
    from ltrr.plugin.ops.simulate.clicks import from_spec
    from ltrr.plugin.ops.simulate.stream import session_stream
    from ltrr.query_plans.catalog import load_catalog

    if not 0.0 <= args.share <= 1.0:
        raise LtrrError(f"--share must be between 0 and 1, got {args.share}")
    catalog = load_catalog(args.catalog)
    data = read_beir(args.dataset)
    captured = Capture.from_json(args.capture.read_bytes())
    judged = sorted(q for q in data.queries if data.qrels.get(q))
    tuning, held_out = split_queries(judged, args.held_out)
    chosen = set(held_out if args.part == "held-out" else tuning)
    part = replace(data, queries={q: v for q, v in data.queries.items() if q in chosen})
    g_max = max((g for grades in data.qrels.values() for g in grades.values()), default=1)
    if args.warmup < 0:
        raise LtrrError(f"--warmup must be >= 0, got {args.warmup}")
    total = args.warmup + args.sessions
    runs = replay_rollout(
        catalog,
        captured,
        data.qrels,
        {s: session_stream(part, total, seed=s) for s in args.seeds},
        policy=args.learner,
        baseline=baseline_sizes(catalog, captured, args.baseline),
        share=args.share,
        clicks=from_spec(args.click_model, g_max=max(g_max, 1)),
        warmup=args.warmup,
    )
    print(
        format_runs(
            runs, policy=args.learner, baseline=args.baseline, share=args.share, warmup=args.warmup
        )
    )
    return 0


def _ope(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.offpolicy import format_table, run_ope

    result = run_ope(
        args.decisions,
        target_catalog=args.target_catalog,
        target_policy=args.target_policy,
        opensearch=args.opensearch,
        seed=args.seed,
        report=args.report,
        clip=args.clip,
        logged_target=args.logged_target,
    )
    print(format_table(result))  # it names the report when one was written
    return 0


def _report(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.client import Cluster
    from ltrr.plugin.ops.live.read import parse_since, parse_until, read_period
    from ltrr.plugin.ops.live.report import live_report
    from ltrr.plugin.ops.rollout import for_report

    since = parse_since(args.since)
    until = parse_until(args.until) if args.until is not None else None
    cluster = Cluster(args.opensearch)
    try:
        period = read_period(cluster, since, targets=args.target, now=until)
    finally:
        cluster.close()
    _say(f"{len(period.decisions):,} decisions and {len(period.events):,} events read")
    path = live_report(period, args.out, grouping=args.by, source=cluster.url, compare=for_report)
    print(f"report: {path}")
    return 0


def _ltr_train(args: argparse.Namespace) -> int:
    from ltrr.plugin.ops.ltr_models import format_result, train_ltr

    if args.judgments == "qrels" and args.dataset is None:
        raise LtrrError("--judgments qrels needs --dataset (a BEIR folder with qrels)")
    held_out: list[str] = []
    if args.held_out > 0:
        if args.dataset is None:
            raise LtrrError("--held-out needs --dataset, whose query ids define the split")
        from ltrr.plugin.ops.data.beir import read_beir
        from ltrr.plugin.ops.replay.bench import split_queries

        data = read_beir(args.dataset, split=None)
        _, unseen = split_queries(sorted(data.qrels), args.held_out)
        held_out = [data.queries[q].text for q in sorted(unseen) if q in data.queries]
    result = train_ltr(
        args.catalog,
        args.dataset,
        opensearch=args.opensearch,
        judgments=args.judgments,
        depth=args.depth,
        folds=args.folds,
        out=args.out,
        seed=args.seed,
        report=args.report,
        target=args.target,
        held_out=held_out,
    )
    print(format_result(result))
    return 0


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    from ltrr.plugin.ops.demo import DemoConfig, run_demo

    _require_source(args)
    node = LocalNode(NodeConfig(port=args.port))
    node.up(say=_say)
    config = DemoConfig(
        catalog=args.catalog,
        source=args.source,
        opensearch=node.url,
        out=args.out,
        sessions=args.sessions,
        seed=args.seed,
        listen=args.listen,
        serve=args.serve,
    )
    sim = asyncio.run(run_demo(config, _say))
    if sim.proxy is not None:
        try:
            sim.proxy.wait()
        except KeyboardInterrupt:
            pass
        finally:
            sim.proxy.stop()
    return 0


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = -1
    if days < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days >= 0")
    return days


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ltrr", description="Learning to rank and retrieve for OpenSearch."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    opensearch = commands.add_parser(
        "opensearch",
        help="a local single-node OpenSearch built from Maven Central",
        description="A local single-node OpenSearch (with its modules, k-NN, neural-search and,"
        " from the plugin folder, LTR) for development and tests.",
    )
    actions = opensearch.add_subparsers(dest="action", required=True)
    for name, text in (
        ("up", "fetch (first run only), start and wait for it to serve; nothing if already up"),
        ("down", "stop the node that 'up' started"),
        ("status", "version, health, modules and plugins (exit 3 when not running)"),
        ("logs", "print the end of the server log"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--port", type=int, default=9200, help="HTTP port on 127.0.0.1 (default 9200)"
        )
        action.add_argument(
            "--security",
            action="store_true",
            help="the secured node: the security plugin only, HTTPS with a private CA, users "
            "admin, proxy, alice and bob (its own state folder; use another --port, e.g. 9210)",
        )
        if name == "up":
            action.add_argument(
                "--heap", default="1g", help="JVM heap, e.g. 512m or 2g (default 1g)"
            )
            action.add_argument(
                "--plugin-dir",
                type=Path,
                default=None,
                metavar="DIR",
                help="folder with plugin zips Maven Central does not serve (the LTR plugin's "
                "opensearch-ltr-2.19.1.0.zip, with its .sha256); default $LTRR_PLUGIN_DIR",
            )
        if name == "logs":
            action.add_argument(
                "-n", "--lines", type=int, default=50, help="how many lines (default 50)"
            )
            action.add_argument(
                "-f", "--follow", action="store_true", help="keep printing new lines"
            )
    opensearch.set_defaults(handler=_opensearch)

    serve = commands.add_parser(
        "serve",
        help="run the LTR&R proxy in front of OpenSearch",
        description="Run the LTR&R proxy: intercepted searches take the learned plan, "
        "everything else passes through unchanged.",
    )
    serve.add_argument(
        "--catalog", nargs="+", required=True, metavar="PATH", help="strategy catalog YAML files"
    )
    serve.add_argument("--opensearch", required=True, metavar="URL", help="OpenSearch base URL")
    serve.add_argument(
        "--opensearch-ca",
        type=Path,
        default=None,
        metavar="PEM",
        help="CA bundle that an https:// OpenSearch's certificate must verify against "
        "(default: the system trust store); verification is never turned off",
    )
    serve.add_argument(
        "--listen", default="127.0.0.1:9250", help="HOST:PORT (default 127.0.0.1:9250)"
    )
    serve.add_argument(
        "--max-body-bytes", type=int, default=100 * 1024 * 1024, help="413 above (default 100 MiB)"
    )
    serve.add_argument(
        "--max-msearch-lines", type=int, default=10_000, help="413 above (default 10000)"
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=BODY_SECONDS,
        help=f"seconds a client has to send its body, or each chunk of it; 408 after "
        f"(default {BODY_SECONDS:g})",
    )
    serve.add_argument(
        "--upstream-timeout",
        type=float,
        default=UPSTREAM_SECONDS,
        help="seconds a forwarded request waits on each read from OpenSearch, and the start-up "
        f"on all of it; 504 after (default {UPSTREAM_SECONDS:g})",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("LTRR_DATA_DIR") or None,
        metavar="DIR",
        help="where acknowledged feedback is logged before it is shipped; one per replica "
        "(default: $LTRR_DATA_DIR, else ~/.local/state/ltrr/proxy-PORT)",
    )
    serve.add_argument(
        "--seed", type=int, default=None, help="seed the policies' draws (reproducible runs)"
    )
    serve.add_argument(
        "--merge-seconds",
        type=float,
        default=2.0,
        metavar="S",
        help="how often bandit statistics are merged with the shared copy (default 2)",
    )
    serve.add_argument(
        "--retention-days",
        type=_days,
        default=30,
        metavar="N",
        help="keep the decision and event logs (daily indices) this many days, 0 for ever; "
        "deleted by the cluster's ISM when it has it, else by the proxy (default 30)",
    )
    serve.add_argument(
        "--max-open-decisions-mb",
        type=int,
        default=256,
        help="memory the decisions awaiting feedback may hold; past it the oldest windows "
        "close early (default 256)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the listening socket, each with its own event loop and "
        "DATA_DIR/worker-I (default 1)",
    )
    serve.add_argument(
        "--no-ubi-queries",
        action="store_true",
        help="do not log the searches the proxy answers to UBI's ubi_queries index",
    )
    serve.add_argument(
        "--simulated-clock",
        action="store_true",
        help="for `ltrr simulate` only: time is what POST /_ltrr/_sim/clock sets, and the "
        "feedback windows and memory writes run when it moves, not on the wall clock",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(handler=_serve)

    catalog = commands.add_parser("catalog", help="strategy catalogs")
    catalog_actions = catalog.add_subparsers(dest="action", required=True)
    validate = catalog_actions.add_parser(
        "validate",
        help="check catalogs offline; every problem names its file, line and key",
        description="Check catalogs offline; every problem names its file, line and key.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.set_defaults(handler=_catalog)

    demo = commands.add_parser(
        "demo",
        help="the end-to-end demo: local node, the music benchmark, the proxy, simulated "
        "users, a report",
        description="Start the local node, derive and index the music benchmark (HetRec "
        "Last.fm 2K), start the proxy, simulate sessions through it once per policy, and write "
        "an HTML report; --serve keeps the proxy up afterwards.",
    )
    demo.add_argument(
        "--catalog",
        type=Path,
        default=SHIPPED_CATALOGS / "music.yml",
        metavar="PATH",
        help="the strategy catalog (default: the packaged music.yml)",
    )
    demo.add_argument(
        "--source",
        type=Path,
        default=os.environ.get("LTRR_LASTFM_SOURCE") or None,
        metavar="DIR_OR_ZIP",
        help="the HetRec Last.fm 2K files (default: $LTRR_LASTFM_SOURCE)",
    )
    demo.add_argument("--sessions", type=int, default=3000, metavar="N")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--out", type=Path, default=Path("build/demo"), metavar="DIR")
    demo.add_argument("--port", type=int, default=9200, help="local node port (default 9200)")
    demo.add_argument("--listen", default="127.0.0.1:9250", help="proxy HOST:PORT")
    demo.add_argument("--serve", action="store_true", help="keep the proxy up afterwards")
    demo.set_defaults(handler=_demo)

    data = commands.add_parser("data", help="datasets: load, build, index")
    data_actions = data.add_subparsers(dest="action", required=True)
    load = data_actions.add_parser(
        "load",
        help="read and check a dataset, and print what it holds",
        description="Read a dataset in BEIR layout (corpus.jsonl, queries.jsonl, qrels/*.tsv; "
        "graded or binary labels), check every line and print a summary.",
    )
    load.add_argument("format", choices=["beir"])
    load.add_argument("path", type=Path, metavar="PATH")
    load.add_argument("--split", default=None, help="qrels split (default: test)")
    load.set_defaults(handler=_data_load)
    build = data_actions.add_parser(
        "build",
        help="derive a benchmark from public data (music: HetRec Last.fm 2K)",
        description="Derive the music search benchmark (artists; entity, topic and head "
        "queries; graded judgments) from the HetRec 2011 Last.fm 2K files, in BEIR layout.",
    )
    build.add_argument("benchmark", choices=["music"])
    build.add_argument("out", type=Path, metavar="OUT", help="output folder")
    build.add_argument(
        "--source",
        type=Path,
        default=os.environ.get("LTRR_LASTFM_SOURCE") or None,
        metavar="DIR_OR_ZIP",
        help="the HetRec files (default: $LTRR_LASTFM_SOURCE)",
    )
    build.add_argument("--seed", type=int, default=13)
    build.set_defaults(handler=_data_build)
    index = data_actions.add_parser(
        "index",
        help="create a catalog's index and load a dataset into it (resumable)",
        description="Create the index from the catalog's index: block, embed the documents with "
        "the catalog's model in batches, and bulk-load them with a progress bar. A checkpoint "
        "lets an interrupted load resume where it stopped.",
    )
    index.add_argument("--catalog", required=True, type=Path, metavar="PATH")
    index.add_argument("--dataset", required=True, type=Path, metavar="PATH", help="BEIR folder")
    index.add_argument("--opensearch", default="http://127.0.0.1:9200", metavar="URL")
    index.add_argument(
        "--index", default=None, help="the index to load (default: the catalog's target)"
    )
    index.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="FILE",
        help="resume file (default ~/.local/state/ltrr/index/<cluster_uuid>-<index>.json)",
    )
    index.set_defaults(handler=_data_index)

    sim = commands.add_parser(
        "simulate",
        help="simulated users through the real proxy, one run per policy, and a report",
        description="Send one seeded stream of simulated sessions through a real proxy to the "
        "real node, once per policy (each on its own copy of the index); clicks from a click "
        "model go back as UBI events. Prints a table and can write an HTML report.",
    )
    sim.add_argument("--catalog", required=True, type=Path, metavar="PATH")
    sim.add_argument("--dataset", required=True, type=Path, metavar="PATH", help="BEIR folder")
    sim.add_argument("--sessions", type=int, default=1000, metavar="N")
    sim.add_argument(
        "--policy",
        nargs="+",
        default=list(DEFAULT_LINEUP),
        metavar="P",
        help="linucb thompson epsilon_greedy only:ARM only:* static full hybrid:rrf "
        "hybrid:minmax oracle (default: all of them)",
    )
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument(
        "--click-model",
        default="pbm",
        metavar="SPEC",
        help="pbm[:eta=1,noise=0.05] or cascade[:continue=0,abandon=0,noise=0.05]",
    )
    sim.add_argument("--k", type=int, default=100, help="recall@K of the fused candidates")
    sim.add_argument("--opensearch", default="http://127.0.0.1:9200", metavar="URL")
    sim.add_argument("--listen", default="127.0.0.1:9260", help="the proxy's HOST:PORT")
    sim.add_argument("--work-dir", type=Path, default=Path("build/simulate"), metavar="DIR")
    sim.add_argument(
        "--index",
        default=None,
        help="the index the copies are made from (default: the catalog's target, loaded from "
        "the dataset unless it already holds exactly it)",
    )
    sim.add_argument("--report", type=Path, default=None, metavar="HTML")
    sim.add_argument(
        "--record-candidates",
        action="store_true",
        help="keep each session's fused top-K ids in runs.json",
    )
    sim.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        metavar="SEED",
        help="run once per seed and print each figure as the mean and a 95%% interval over "
        "the seeds, tuning and held-out queries apart (instead of --seed)",
    )
    sim.add_argument(
        "--held-out",
        type=float,
        default=0.3,
        metavar="SHARE",
        help="with --seeds: the share of judged queries reported apart (by CRC-32 of the id, "
        "as `ltrr replay` and `ltrr ltr train --held-out` split them)",
    )
    sim.add_argument(
        "--out", type=Path, default=None, metavar="MD", help="with --seeds: write the table"
    )
    sim.add_argument(
        "--rerank-model",
        default=None,
        metavar="NAME",
        help="the LTR model the +rerank contenders serve (default: the catalog's "
        "rerank.model), e.g. the music_ltr_vN that `ltrr ltr train` just uploaded",
    )
    sim.set_defaults(handler=_simulate)

    rep = commands.add_parser(
        "replay",
        help="the line-up replayed from captured arm lists: several seeds, held-out queries",
        description="Capture every judged query's arm lists (and OpenSearch's hybrid pages) "
        "from the node once, then replay each learner and static plan over seeded sessions in "
        "one process, with simulated time and a fixed order of feedback: the same seeds give "
        "the same table on any machine. Prints the mean and 95% interval over the seeds for a "
        "tuning part and a held-out part of the queries.",
    )
    rep.add_argument("--catalog", required=True, type=Path, metavar="PATH")
    rep.add_argument("--dataset", required=True, type=Path, metavar="PATH", help="BEIR folder")
    rep.add_argument("--sessions", type=int, default=3000, metavar="N")
    rep.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], metavar="S")
    rep.add_argument("--learner", nargs="+", default=list(REPLAY_LEARNERS), metavar="P")
    rep.add_argument("--held-out", type=float, default=0.3, metavar="FRACTION")
    rep.add_argument("--click-model", default="pbm", metavar="SPEC")
    rep.add_argument("--k", type=int, default=100, help="recall@K of the fused candidates")
    rep.add_argument("--opensearch", default="http://127.0.0.1:9200", metavar="URL")
    rep.add_argument(
        "--index",
        default=None,
        help="search this index (default: the catalog's target, "
        "loaded from the dataset when it does not hold it yet)",
    )
    rep.add_argument("--work-dir", type=Path, default=Path("build/replay"), metavar="DIR")
    rep.add_argument(
        "--latency-every",
        type=int,
        default=10,
        metavar="N",
        help="time each contender's own retrieval on the node for every N-th session, "
        "for the p50/p99 columns (0: no latency)",
    )
    rep.add_argument("--out", type=Path, default=None, metavar="MD", help="also write the table")
    rep.set_defaults(handler=_replay)

    ope = commands.add_parser(
        "ope",
        help="estimate a policy's value from logged decisions (IPS, SNIPS, doubly robust)",
        description="Off-policy evaluation: from logged decisions (the ltrr-decisions index, "
        "or a JSONL file with a reward per decision), estimate what a target policy would have "
        "earned, with bootstrap confidence intervals and the effective sample size.",
    )
    ope.add_argument(
        "--decisions", required=True, metavar="INDEX_OR_FILE", help="e.g. ltrr-decisions"
    )
    ope.add_argument("--target-catalog", required=True, type=Path, metavar="PATH")
    ope.add_argument(
        "--target-policy",
        default=None,
        metavar="P",
        help="override the catalog's policy: static, static:ARM,ARM, linucb, thompson, "
        "epsilon_greedy",
    )
    ope.add_argument(
        "--logged-target",
        default=None,
        metavar="NAME",
        help="read the decisions logged for this target (default: the catalog's)",
    )
    ope.add_argument("--opensearch", default=None, metavar="URL")
    ope.add_argument("--clip", type=float, default=None, help="cap importance weights")
    ope.add_argument("--seed", type=int, default=7)
    ope.add_argument("--report", type=Path, default=None, metavar="HTML")
    ope.set_defaults(handler=_ope)

    live = commands.add_parser(
        "report",
        help="an HTML report of what the proxy decided and earned over a recent period",
        description="Read the decisions and feedback events of a period from a real cluster "
        "(ltrr-decisions* and ltrr-events*) and write one self-contained HTML page: arm share "
        "over time by intent or query shape, reward per arm, fallbacks and failures, latency, "
        "and the rollout comparison. (A simulation's report is `ltrr simulate --report`.)",
    )
    live.add_argument(
        "--since", required=True, metavar="AGE", help="the period up to now: 90m, 24h, 7d, 2w"
    )
    live.add_argument(
        "--until",
        default=None,
        metavar="TIME",
        help="end the period here instead of now: ISO 8601 (2026-01-05T12:00:00Z) or epoch "
        "seconds; a simulation's log is on its simulated clock",
    )
    live.add_argument("--opensearch", default="http://127.0.0.1:9200", metavar="URL")
    live.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="only the decisions and events of this target (repeat for several; default: all)",
    )
    live.add_argument(
        "--by",
        choices=["auto", "intent", "shape"],
        default="auto",
        help="group searches by the callers' context.intent or by query shape (default: "
        "intent when the searches carry one)",
    )
    live.add_argument("--out", type=Path, default=Path("build/live-report.html"), metavar="HTML")
    live.set_defaults(handler=_report)

    roll = commands.add_parser(
        "rollout",
        help="the learner against the baseline on live traffic, from the decision log",
        description="Read ltrr-decisions* and ltrr-events* and compare the rollout's sides: "
        "for a split, clicks per search on each side with 95% intervals and a Welch t-test; "
        "for interleaving, wins, losses and ties, the preference with its interval and a sign "
        "test; latency and cost for both. Says whether the difference is significant at 5%.",
    )
    roll.add_argument("--since", default="24h", metavar="AGE", help="the period: 90m, 24h, 7d")
    roll.add_argument("--opensearch", default="http://127.0.0.1:9200", metavar="URL")
    roll.add_argument(
        "--catalog", type=Path, default=None, metavar="PATH", help="read its target's decisions"
    )
    roll.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="only this target's decisions (repeat for several)",
    )
    roll.add_argument("--event-type", default="click", metavar="TYPE", help="what counts")
    roll.set_defaults(handler=_rollout)

    rr = commands.add_parser(
        "rollout-replay",
        help="a rollout replayed from captured arm lists: searches each test needs",
        description="Replay the learner against a baseline plan over seeded sessions (as "
        "`ltrr replay` does, from its capture file), once interleaved and once split, and "
        "print after how many searches each test became significant at 5% and stayed so.",
    )
    rr.add_argument("--catalog", required=True, type=Path, metavar="PATH")
    rr.add_argument("--dataset", required=True, type=Path, metavar="PATH", help="BEIR folder")
    rr.add_argument(
        "--capture", required=True, type=Path, metavar="JSON", help="made by `ltrr replay`"
    )
    rr.add_argument("--learner", default="safe_plans", metavar="P")
    rr.add_argument(
        "--baseline",
        default="static",
        metavar="PLAN",
        help="catalog (its rollout baseline or fallback), static, full or only:ARM",
    )
    rr.add_argument("--share", type=float, default=0.5, help="the split's learner share")
    rr.add_argument(
        "--sessions", type=int, default=3000, metavar="N", help="searches in the rollout"
    )
    rr.add_argument(
        "--warmup",
        type=int,
        default=0,
        metavar="N",
        help="searches the learner serves alone first, learning, before the rollout starts",
    )
    rr.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], metavar="S")
    rr.add_argument(
        "--held-out", type=float, default=0.3, metavar="FRACTION", help="as ltrr replay's"
    )
    rr.add_argument(
        "--part",
        choices=["tuning", "held-out"],
        default="tuning",
        help="which part of the queries the sessions ask (default: tuning)",
    )
    rr.add_argument("--click-model", default="pbm", metavar="SPEC")
    rr.set_defaults(handler=_rollout_replay)

    ltr = commands.add_parser("ltr", help="learning-to-rank models for the rerank")
    ltr_actions = ltr.add_subparsers(dest="action", required=True)
    train = ltr_actions.add_parser(
        "train",
        help="featureset from the catalog, judgments, LambdaMART vs linear, upload",
        description="Build the LTR featureset from the catalog, collect judgments (qrels, or "
        "clicks through COEC or a PBM estimate), log feature values on the node, compare "
        "LambdaMART (xgboost) and a linear model by cross-validated nDCG@10, and upload the "
        "winner with _createmodel (written to --out when the LTR plugin is absent).",
    )
    train.add_argument("--catalog", required=True, type=Path, metavar="PATH")
    train.add_argument("--dataset", type=Path, default=None, metavar="PATH", help="BEIR folder")
    train.add_argument("--judgments", choices=["qrels", "coec", "pbm"], default="qrels")
    train.add_argument("--opensearch", default="http://127.0.0.1:9200", metavar="URL")
    train.add_argument("--depth", type=int, default=100, help="candidates per arm and query")
    train.add_argument("--folds", type=int, default=5)
    train.add_argument("--out", type=Path, default=Path("build/ltr"), metavar="DIR")
    train.add_argument("--seed", type=int, default=7)
    train.add_argument("--report", type=Path, default=None, metavar="HTML")
    train.add_argument(
        "--target",
        default=None,
        metavar="INDEX",
        help="the index whose logged searches and documents to learn from, e.g. a simulation's "
        "copy music-sim-safe-plans (default: the catalog's target); the model keeps the "
        "catalog's name",
    )
    train.add_argument(
        "--held-out",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="never train on this share of the dataset's judged queries (by CRC-32 of the id, "
        "as `ltrr simulate --seeds` and `ltrr replay` report them apart)",
    )
    train.set_defaults(handler=_ltr_train)

    memory = commands.add_parser("memory", help="the memory (query -> entity) index")
    memory_actions = memory.add_subparsers(dest="action", required=True)
    predict = memory_actions.add_parser(
        "predict",
        help="write index-time predicted Q2E scores on an existing index",
        description="Read every document of the catalog's target once and write its predicted "
        "query -> entity scores (from the catalog's memory.name_fields and phrase_fields) into "
        "memory.predicted_field, adding the rank_features mappings if they are missing.",
    )
    predict.add_argument("--catalog", required=True, type=Path, metavar="PATH")
    predict.add_argument("--opensearch", default="http://127.0.0.1:9200", metavar="URL")
    predict.set_defaults(handler=_memory_predict)

    bench = commands.add_parser("bench", help="benchmarks that print numbers")
    bench_actions = bench.add_subparsers(dest="action", required=True)
    over = bench_actions.add_parser(
        "overhead",
        help="decision time, and proxy latency against direct OpenSearch, as JSON",
        description="Decision time in process, and end-to-end latency and sequential "
        "throughput of direct _msearch, the intercepted path, OpenSearch's native hybrid query "
        "of the same arms at the same budget (RRF and min-max pipelines) and passthrough, "
        "measured in one run; prints JSON.",
    )
    over.add_argument("--catalog", required=True, type=Path, metavar="PATH")
    over.add_argument(
        "--opensearch", default="http://127.0.0.1:9200", metavar="URL", help="OpenSearch base URL"
    )
    over.add_argument("--queries", type=int, default=500, metavar="N")
    over.add_argument("--warmup", type=int, default=50, metavar="N")
    over.add_argument("--seed", type=int, default=7)
    over.add_argument(
        "--hybrid",
        nargs="*",
        choices=["rrf", "minmax"],
        default=["rrf", "minmax"],
        metavar="METHOD",
        help="native hybrid pipelines to time beside the intercepted path: rrf, minmax "
        "(default: both; --hybrid alone: none)",
    )
    over.set_defaults(handler=_bench)
    feed = bench_actions.add_parser(
        "feedback",
        help="feedback intake throughput and update latency, local and across replicas",
        description="Against a throwaway index and two in-process proxy replicas: feedback "
        "events/s acknowledged (fsync'd), time until the local and the other replica's policy "
        "learned an event, and until events are searchable in ltrr-events; prints a table.",
    )
    feed.add_argument(
        "--opensearch", default="http://127.0.0.1:9200", metavar="URL", help="OpenSearch base URL"
    )
    feed.add_argument("--searches", type=int, default=200, metavar="N", help="decisions to feed")
    feed.add_argument("--events", type=int, default=5000, metavar="N", help="events per run")
    feed.add_argument("--concurrency", type=int, default=32, metavar="N", help="clients")
    feed.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=[1, 10],
        metavar="N",
        help="events per request; one intake run per value (default: 1 10)",
    )
    feed.add_argument(
        "--probes", type=int, default=50, metavar="N", help="events timed for update latency"
    )
    feed.add_argument(
        "--merge-seconds",
        type=float,
        default=1.0,
        metavar="S",
        help="the replicas' merge interval (default 1)",
    )
    feed.add_argument("--seed", type=int, default=7)
    feed.set_defaults(handler=_bench_feedback)
    soak = bench_actions.add_parser(
        "soak",
        help="a bounded mix of intercepted searches, passthrough and feedback, for N seconds",
        description="Against a throwaway index and a real ltrr serve process: throughput, "
        "errors by status, p50/p99 per path, and the proxy's RSS at the start and the end "
        "with its growth per 1,000 open decisions.",
    )
    soak.add_argument(
        "--opensearch", default="http://127.0.0.1:9200", metavar="URL", help="OpenSearch base URL"
    )
    soak.add_argument("--seconds", type=float, default=60.0, metavar="N", help="how long")
    soak.add_argument("--clients", type=int, default=16, metavar="C", help="concurrent clients")
    soak.add_argument("--seed", type=int, default=7)
    soak.set_defaults(handler=_bench_soak)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except (LtrrError, ValueError) as exc:
        print(f"ltrr: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
