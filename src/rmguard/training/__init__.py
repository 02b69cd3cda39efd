"""Training a reward model, along the data's path: config → features → batches → model → objectives → loss."""
