"""Training: optimizers and schedules, weight events, and the epoch loop (`train.loop.train`)."""
