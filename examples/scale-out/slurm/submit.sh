#!/bin/bash
# Submits the shards as an array job and the finalize step after it, from the repository root:
#   SHARDS=3 SLUICE_OUT=/shared/sluice/quickstart-out examples/scale-out/slurm/submit.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shards="${SHARDS:-3}"
array_id=$(sbatch --parsable --array="0-$((shards - 1))" --export=ALL "$here/shards.sbatch")
sbatch --dependency="afterok:${array_id}" --export=ALL "$here/finalize.sbatch"
echo "submitted array job ${array_id} (${shards} shards) and its finalize step"
