"""An Airflow DAG that scores a Sluice job as SHARDS parallel tasks, then finalizes it.

Each task `shard_I` runs `sluice run JOB --shard I/SHARDS` on a worker; `finalize` runs once
every shard succeeded, checks that each unit of the job is committed and writes _SUCCESS. The
workers share the output directory (a POSIX filesystem with atomic rename and flock: see
docs/scale-out.md). A failed shard is retried by Airflow (`retries`): committed units are kept.

Copy this file into the DAGs folder; set SLUICE_JOB and SLUICE_OUT in the workers' environment
or edit the defaults below. Needs Airflow >= 2.3 (BashOperator append_env).
"""
import datetime
import os

from airflow import DAG
from airflow.operators.bash import BashOperator

SHARDS = 3
ENV = {
    "SLUICE_JOB": os.environ.get("SLUICE_JOB", "/opt/sluice/examples/quickstart/job.yaml"),
    "SLUICE_OUT": os.environ.get("SLUICE_OUT", "/shared/sluice/quickstart-out"),
}

with DAG(
    dag_id="sluice_quickstart",
    start_date=datetime.datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    default_args={"retries": 2, "retry_delay": datetime.timedelta(minutes=1)},
    tags=["sluice"],
) as dag:
    shards = [
        BashOperator(
            task_id=f"shard_{index}",
            # Small units so that three shards share the quickstart's 2,000 rows; real inputs keep
            # the default of 64 MiB per unit.
            bash_command=(f'sluice run "$SLUICE_JOB" --shard {index}/{SHARDS} '
                          '--set partition.target_bytes=16KiB --set output.path="$SLUICE_OUT"'),
            env=ENV,
            append_env=True,
        )
        for index in range(SHARDS)
    ]
    finalize = BashOperator(
        task_id="finalize",
        bash_command='sluice finalize "$SLUICE_OUT"',
        env=ENV,
        append_env=True,
        retries=0,
    )
    shards >> finalize
