"""The ``ltrr`` command line.

Errors we raise on purpose print as one clear message and exit 1; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.node import LocalNode, NodeConfig


def _say(message: str) -> None:
    print(message, flush=True)


def _opensearch(args: argparse.Namespace) -> int:
    node = LocalNode(NodeConfig(port=args.port, heap=getattr(args, "heap", "1g")))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ltrr", description="Learning to rank and retrieve for OpenSearch."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    opensearch = commands.add_parser(
        "opensearch",
        help="a local single-node OpenSearch built from Maven Central",
        description="A local single-node OpenSearch (with k-NN) for development and tests.",
    )
    actions = opensearch.add_subparsers(dest="action", required=True)
    for name, text in (
        ("up", "fetch (first run only), start and wait for green; does nothing if already up"),
        ("down", "stop the node that 'up' started"),
        ("status", "version, health, modules and plugins (exit 3 when not running)"),
        ("logs", "print the end of the server log"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--port", type=int, default=9200, help="HTTP port on 127.0.0.1 (default 9200)"
        )
        if name == "up":
            action.add_argument(
                "--heap", default="1g", help="JVM heap, e.g. 512m or 2g (default 1g)"
            )
        if name == "logs":
            action.add_argument(
                "-n", "--lines", type=int, default=50, help="how many lines (default 50)"
            )
            action.add_argument(
                "-f", "--follow", action="store_true", help="keep printing new lines"
            )
    opensearch.set_defaults(handler=_opensearch)
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
