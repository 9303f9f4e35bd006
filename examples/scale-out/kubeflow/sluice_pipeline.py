"""A Kubeflow Pipelines (kfp v2) pipeline that scores a Sluice job as SHARDS parallel
container tasks, then finalizes it.

sluice_shard runs `sluice run JOB --shard I/N` in the image; sluice_finalize runs after every
shard, checks that each unit of the job is committed and writes _SUCCESS. The tasks must mount
one ReadWriteMany volume (POSIX rename and flock: see docs/scale-out.md) holding the job, its
model and inputs, and the output directory, e.g. with kfp-kubernetes:
kubernetes.mount_pvc(task, pvc_name="sluice-data", mount_path="/data").

    python3 sluice_pipeline.py        # writes sluice_pipeline.yaml, to upload to Kubeflow
"""
from kfp import compiler, dsl

IMAGE = "sluice:latest"  # the sluice binary on PATH
SHARDS = 3


@dsl.container_component
def sluice_shard(job: str, index: int, count: int, out: str):
    # Small units so that three shards share the quickstart's 2,000 rows; real inputs keep the
    # default of 64 MiB per unit.
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["sh", "-c",
                 'exec sluice run "$0" --shard "$1/$2" --set partition.target_bytes=16KiB --set output.path="$3"'],
        args=[job, index, count, out],
    )


@dsl.container_component
def sluice_finalize(out: str):
    return dsl.ContainerSpec(image=IMAGE, command=["sh", "-c", 'exec sluice finalize "$0"'], args=[out])


@dsl.pipeline(name="sluice-quickstart")
def sluice_quickstart(job: str = "/data/examples/quickstart/job.yaml", out: str = "/data/quickstart-out"):
    shards = [sluice_shard(job=job, index=index, count=SHARDS, out=out) for index in range(SHARDS)]
    sluice_finalize(out=out).after(*shards)


if __name__ == "__main__":
    compiler.Compiler().compile(sluice_quickstart, "sluice_pipeline.yaml")
