"""`eos stack up | down | status | logs`."""

from __future__ import annotations

import argparse
from pathlib import Path

from eos.stack.artifacts import ToolMissing
from eos.stack.layout import StackLayout
from eos.stack.stack import Stack, StackError, StackSpec


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stack = subparsers.add_parser("stack", help="run a local Kafka (KRaft) + schema registry")
    stack.add_argument(
        "--home",
        type=Path,
        default=None,
        help="artifact cache (default $EOS_STACK_HOME or ~/.cache/eos/stack)",
    )
    stack.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="this stack's data, logs and pid files (default <home>/run)",
    )
    actions = stack.add_subparsers(dest="action", required=True)

    up = actions.add_parser("up", help="start the stack and wait until it answers")
    up.add_argument("--brokers", type=int, choices=(1, 3), default=1)
    up.add_argument(
        "--kafka-port",
        type=int,
        default=9092,
        help="first broker's port; node i listens on port+2(i-1), controller +1",
    )
    up.add_argument("--registry-port", type=int, default=8081)
    up.add_argument("--no-registry", action="store_true", help="start Kafka only")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")

    down = actions.add_parser("down", help="stop what `up` started")
    down.add_argument("--wipe", action="store_true", help="also delete the topics' data")

    actions.add_parser("status", help="show each process and whether it answers")

    logs = actions.add_parser("logs", help="print the end of the log files")
    logs.add_argument("name", nargs="?", help="kafka-1, kafka-2, kafka-3 or registry")
    logs.add_argument("-n", "--lines", type=int, default=50)


def run(args: argparse.Namespace) -> int:
    stack = Stack(StackLayout.create(args.home, args.run_dir))
    try:
        if args.action == "up":
            stack.up(
                StackSpec(args.brokers, args.kafka_port, args.registry_port, not args.no_registry),
                timeout=args.timeout,
            )
        elif args.action == "down":
            stack.down(wipe=args.wipe)
        elif args.action == "status":
            return _print_status(stack)
        elif args.action == "logs":
            print(stack.logs(args.name, args.lines))
    except (StackError, ToolMissing, RuntimeError) as exc:
        print(f"eos stack {args.action}: {exc}")
        return 1
    return 0


def _print_status(stack: Stack) -> int:
    rows = stack.status()
    for row in rows:
        if row.pid is None:
            state = "stale pid file (process gone)" if row.stale_pid_file else "stopped"
        else:
            state = f"running pid {row.pid}, " + ("answering" if row.answering else "NOT answering")
        print(f"{row.name:<10} 127.0.0.1:{row.port:<6} {state}")
    if all(r.answering for r in rows):
        print(f"bootstrap servers: {stack.spec.bootstrap_servers}")
        if stack.spec.registry_url:
            print(f"schema registry:   {stack.spec.registry_url}")
        return 0
    return 3
