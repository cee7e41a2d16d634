"""Training: losses and update steps, replay memory, the trainer (the one training loop
and its hooks), its checkpoints and the run description."""
