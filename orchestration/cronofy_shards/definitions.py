"""Dagster definitions: the shards of tap-cronofy as partitions of one asset.

Each partition runs `meltano run tap-cronofy <loader>` in the Meltano project with its shard
(`TAP_CRONOFY_SHARD=k/N`), its own state id suffix (`shard-k`) and its own Meltano run
directory; a pool caps how many shards run at once, the run queue keeps a shard from
overlapping itself (dagster.yaml), a schedule starts every shard hourly, and a failed shard
is retried, resuming from its state. Configured by environment:

- MELTANO_PROJECT_ROOT: the Meltano project (default: this repository)
- CRONOFY_SHARDS: the number of shards (default 4); CRONOFY_LOADER (default target-duckdb)
- MELTANO_DATABASE_URI: the state backend every shard shares (PostgreSQL in production)
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

PROJECT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[2])
SHARDS = int(os.environ.get("CRONOFY_SHARDS", "4"))
LOADER = os.environ.get("CRONOFY_LOADER", "target-duckdb")
POOL = "cronofy_shards"  # its limit: `concurrency: pools:` in dagster.yaml

shards = dg.StaticPartitionsDefinition([str(k) for k in range(SHARDS)])


def shard_env(shard: int, count: int, project: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment of one shard's `meltano run`: its shard, its state id suffix, and
    its own Meltano system directory (Meltano writes each run's config, catalog and state
    under .meltano/run/<plugin>/, which two shards of one project would share: meltano#8763),
    with the project's installed plugins linked in and the state backend left shared."""
    own = project / ".meltano-shards" / str(shard)
    own.mkdir(parents=True, exist_ok=True)
    for kind in ("extractors", "loaders", "utilities", "mappers", "orchestrators"):
        link, installed = own / kind, project / ".meltano" / kind
        if installed.is_dir() and not link.exists():
            link.symlink_to(installed)
    return {
        **base,
        "TAP_CRONOFY_SHARD": f"{shard}/{count}",
        "MELTANO_RUN_STATE_ID_SUFFIX": f"shard-{shard}",
        "MELTANO_SYS_DIR_ROOT": str(own),
        "MELTANO_DATABASE_URI": base.get("MELTANO_DATABASE_URI")
        or f"sqlite:///{project / '.meltano' / 'meltano.db'}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def meltano() -> str:
    beside = Path(sys.executable).with_name("meltano")
    return str(beside) if beside.exists() else "meltano"


@dg.asset(
    partitions_def=shards,
    pool=POOL,
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=int(os.environ.get("CRONOFY_RETRY_DELAY", "60"))
    ),
    kinds={"meltano"},
    description="One shard of tap-cronofy, loaded by `meltano run`.",
)
def cronofy_shard(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    shard = int(context.partition_key)
    env = shard_env(shard, SHARDS, PROJECT, dict(os.environ))
    command = [meltano(), "run", "tap-cronofy", LOADER]
    context.log.info("shard %s/%s: %s", shard, SHARDS, " ".join(command))
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    tail = "\n".join(done.stderr.splitlines()[-15:])
    if done.returncode != 0:
        raise dg.Failure(
            description=f"shard {shard}/{SHARDS}: meltano run exited {done.returncode}",
            metadata={"log tail": dg.MetadataValue.text(tail)},
        )
    return dg.MaterializeResult(
        metadata={"shard": f"{shard}/{SHARDS}", "log tail": dg.MetadataValue.text(tail)}
    )


shards_job = dg.define_asset_job("cronofy_shards_job", selection=[cronofy_shard])


@dg.schedule(cron_schedule="0 * * * *", job=shards_job, execution_timezone="UTC")
def hourly(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    """Every shard, every hour; a shard still running is not started again (dagster.yaml)."""
    hour = context.scheduled_execution_time.strftime("%Y-%m-%dT%H")
    for key in shards.get_partition_keys():
        yield dg.RunRequest(run_key=f"{hour}/{key}", partition_key=key)


defs = dg.Definitions(assets=[cronofy_shard], jobs=[shards_job], schedules=[hourly])
