"""Training: the run config, the losses, the loop, atomic checkpoints and multi-GPU (DDP) set-up."""
