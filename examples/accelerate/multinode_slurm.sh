#!/bin/bash
# rmguard on several nodes under SLURM: one torchrun per node, the rendezvous on the first node.
#   sbatch examples/accelerate/multinode_slurm.sh X.yaml
# FSDP2 over every GPU of every node; output_dir (in X.yaml) must be on a file system all nodes see, as
# resuming reads each checkpoint from every rank. Global batch = per_device_train_batch_size × GPUs ×
# nodes × gradient_accumulation_steps. For DeepSpeed replace the torchrun line by
#   accelerate launch --config_file examples/accelerate/deepspeed_zero3.yaml --num_machines "$SLURM_NNODES" \
#     --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) --machine_rank "$SLURM_NODEID" \
#     --main_process_ip "$MASTER_ADDR" --main_process_port "$MASTER_PORT" -m rmguard train --config "$CONFIG"
#SBATCH --job-name=rmguard
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --exclusive
set -euo pipefail
CONFIG=${1:?usage: sbatch multinode_slurm.sh CONFIG.yaml}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=${MASTER_PORT:-29500}
export MASTER_ADDR MASTER_PORT CONFIG GPUS_PER_NODE
srun --kill-on-bad-exit=1 bash -c 'torchrun \
  --nnodes "$SLURM_NNODES" --nproc_per_node "$GPUS_PER_NODE" --node_rank "$SLURM_NODEID" \
  --rdzv_backend c10d --rdzv_endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv_id "$SLURM_JOB_ID" \
  -m rmguard train --config "$CONFIG" --fsdp "full_shard auto_wrap" --bf16 true'
