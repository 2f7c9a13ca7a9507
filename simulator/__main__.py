"""Run the simulator standalone: ``python -m simulator --port 8765``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from simulator.core import Simulator
from simulator.server import SimulatorServer


def project_lines(sim: Simulator, url: str, accounts_path: str) -> str:
    """Write the accounts file; the lines that set a Meltano project up against it."""
    config = sim.tap_config(url)
    path = Path(accounts_path).resolve()
    path.write_text(json.dumps(config["accounts"], indent=2), encoding="utf-8")
    ids = json.dumps(config["scheduling_request_ids"][:5])
    lines = [
        f"meltano config set tap-cronofy api_url {url}",
        f"meltano config set tap-cronofy client_id {config['client_id']}",
        f"meltano config set tap-cronofy client_secret {config['client_secret']}",
        "meltano config unset tap-cronofy access_token",
        "meltano config unset tap-cronofy refresh_token",
        f"meltano config set tap-cronofy accounts_file {path}",
        f"meltano config set tap-cronofy scheduling_request_ids '{ids}'",
        "meltano config test tap-cronofy",
    ]
    return (
        "To try it from your own Meltano project, run these there while the simulator runs\n"
        "(`meltano config unset tap-cronofy api_url` and your real settings take you back to\n"
        "Cronofy):\n" + "\n".join(lines)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Cronofy API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--events-per-account", type=int, default=60)
    parser.add_argument("--page-size", type=int, default=25)
    parser.add_argument("--scheduling-requests", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    parser.add_argument("--rate-limit-per-minute", type=int, default=0)
    parser.add_argument("--rate-limit-per-second", type=int, default=0)
    parser.add_argument(
        "--bulk-events",
        type=int,
        default=0,
        help="add this many plain in-window events to each account",
    )
    parser.add_argument("--write-config", help="write a tap config for the seeded accounts here")
    parser.add_argument(
        "--write-accounts",
        help="write the seeded accounts here (an accounts_file) and print the `meltano config "
        "set` lines that point a Meltano project at this simulator",
    )
    args = parser.parse_args()

    sim = Simulator(
        seed=args.seed,
        accounts=args.accounts,
        events_per_account=args.events_per_account,
        page_size=args.page_size,
        scheduling_requests=args.scheduling_requests,
    )
    sim.latency = args.latency
    for account_id in sim.accounts if args.bulk_events else ():
        sim.add_bulk_events(account_id, args.bulk_events)
    if args.rate_limit_per_second:
        sim.rate_limits.append((args.rate_limit_per_second, 1.0))
    if args.rate_limit_per_minute:
        sim.rate_limits.append((args.rate_limit_per_minute, 60.0))
    server = SimulatorServer(sim, args.host, args.port)
    if args.write_config:
        with open(args.write_config, "w", encoding="utf-8") as handle:
            json.dump(sim.tap_config(server.url), handle, indent=2)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Cronofy simulator on {server.url} ({len(sim.accounts)} accounts)", flush=True)
    if args.write_accounts:
        print(project_lines(sim, server.url, args.write_accounts), flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
