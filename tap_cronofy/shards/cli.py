"""`tap-cronofy-shards`: re-shard state files (from `meltano state get`, or the tap's own)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tap_cronofy.shards.reshard import SINGER_STATE, reshard


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="tap-cronofy-shards",
        description="Split and merge the states of tap-cronofy's shards when their number "
        "changes: no bookmark is lost and no account is read again whole.",
    )
    commands = main.add_subparsers(dest="command", required=True)
    split = commands.add_parser(
        "reshard",
        help="read N shard states, write M",
        description="Read the states of every current shard (Singer states, or Meltano's "
        '{"singer_state": ...} as `meltano state get` prints them) and write one state per '
        "new shard, shard-0.json ... shard-<M-1>.json, in Meltano's form for `meltano state "
        "set`.",
    )
    split.add_argument("states", nargs="+", type=Path, help="every current shard's state file")
    split.add_argument("--to", type=int, required=True, help="the new number of shards")
    split.add_argument(
        "--scheduling-shard", type=int, default=0, help="the shard reading scheduling_requests"
    )
    split.add_argument("--out-dir", type=Path, required=True)
    return main


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        states = [json.loads(path.read_text(encoding="utf-8")) for path in args.states]
        shards = reshard(states, args.to, args.scheduling_shard)
    except (OSError, ValueError) as exc:
        sys.exit(f"tap-cronofy-shards: {exc}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for index, state in enumerate(shards):
        path = args.out_dir / f"shard-{index}.json"
        path.write_text(json.dumps({SINGER_STATE: state}, separators=(",", ":")), encoding="utf-8")
    accounts = sum(len(v.get("accounts", {})) for s in shards for v in s["bookmarks"].values())
    print(
        f"{len(states)} states -> {args.to} shards in {args.out_dir} ({accounts} account entries)"
    )


if __name__ == "__main__":
    main()
