"""``python -m subactor node``: a worker node of a cluster; ``python -m subactor top``:
a runtime's actors in the terminal.

``node`` joins the cluster over NATS and hosts the actors other nodes spawn on it, until
its standard input closes or it is interrupted (Ctrl-C)::

    python -m subactor node --nats nats://127.0.0.1:4222 --name worker-1 --python-path jobs/

``top`` reads a runtime's observation endpoint (``Runtime(observe=...)``) every second
until Ctrl-C (``--once``: one screen, then exit)::

    python -m subactor top --url 127.0.0.1:9464
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

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
    node.add_argument("--observe", default=None, help="serve the node's metrics and live view at host:port")
    top = commands.add_parser("top", help="show a runtime's actors, from its observation endpoint")
    top.add_argument("--url", default="127.0.0.1:9464", help="the endpoint (host:port or http://host:port)")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between screens")
    top.add_argument("--once", action="store_true", help="print one screen and exit")
    args = parser.parse_args(argv)
    if args.command == "top":
        return _top(args.url, args.interval, args.once)
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
        observe=args.observe,
    ) as rt:
        if rt.observe_url is not None:
            print(f"observing at {rt.observe_url}", flush=True)
        print(f"node {args.name} ready", flush=True)
        try:
            sys.stdin.read()
        except KeyboardInterrupt:
            pass
    return 0


def _top(url: str, interval: float, once: bool) -> int:
    from ._top import TopError, fetch, render

    if interval < 0.05:
        print("python -m subactor top: --interval takes seconds (at least 0.05)", file=sys.stderr)
        return 2
    width = shutil.get_terminal_size((160, 40)).columns
    try:
        while True:
            screen = render(fetch(url), width)
            if once:
                sys.stdout.write(screen)
                return 0
            sys.stdout.write("\x1b[H\x1b[2J" + screen)
            sys.stdout.flush()
            time.sleep(interval)
    except TopError as e:
        print(f"python -m subactor top: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if not once and os.isatty(1):
            sys.stdout.write("\n")


if __name__ == "__main__":
    sys.exit(main())
