"""Training: losses and update steps, replay memory, the trainer, its checkpoints."""
