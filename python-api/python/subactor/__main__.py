"""``python -m subactor node``: a worker node of a cluster.

Joins the cluster over NATS and hosts the actors other nodes spawn on it, until its
standard input closes or it is interrupted (Ctrl-C)::

    python -m subactor node --nats nats://127.0.0.1:4222 --name worker-1 --python-path jobs/
"""

from __future__ import annotations

import argparse
import sys

from . import Runtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m subactor")
    commands = parser.add_subparsers(dest="command", required=True)
    node = commands.add_parser("node", help="run a worker node of a cluster")
    node.add_argument("--nats", required=True, help="NATS server URL(s), comma-separated")
    node.add_argument("--name", required=True, help="this node's name")
    node.add_argument("--cluster", default=None, help="the cluster's name (default: subactor)")
    node.add_argument("--python-path", action="append", default=[], help="a folder actors import from")
    node.add_argument("--preload", action="append", default=[], help="a module process actors start with")
    node.add_argument("--user", default=None)
    node.add_argument("--password", default=None)
    node.add_argument("--token", default=None)
    node.add_argument("--trusted", action="store_true", help="accept pickled objects from other nodes")
    args = parser.parse_args(argv)
    with Runtime(
        python_path=args.python_path,
        preload=args.preload,
        cluster=args.nats.split(","),
        node=args.name,
        cluster_name=args.cluster,
        user=args.user,
        password=args.password,
        token=args.token,
        trusted=args.trusted,
    ):
        print(f"node {args.name} ready", flush=True)
        try:
            sys.stdin.read()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
