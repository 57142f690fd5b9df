"""File input/output: raw SIM stacks, SR stacks, separated recordings and their metadata."""
