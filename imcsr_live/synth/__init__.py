"""Synthetic microscope world: moving specimen (ground truth) and the SIM forward model."""
