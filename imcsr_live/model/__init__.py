"""IMC-SR network, training losses and evaluation metrics (pure numerics: torch/numpy, no file I/O)."""

from imcsr_live.model.imcsr_net import IMCSRNet, IMCSRNetConfig, count_parameters, split_output

__all__ = ["IMCSRNet", "IMCSRNetConfig", "count_parameters", "split_output"]
