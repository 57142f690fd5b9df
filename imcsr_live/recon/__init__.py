"""SIM reconstruction: OTF model, parameter estimation with guards, Wiener reconstruction, quality metrics.

Pure numerics (numpy / torch), no I/O. The live pipeline and ``imcsr-live reconstruct`` use
:class:`Reconstructor`; the pieces below it are public for tools and tests.
"""

from imcsr_live.recon.artifacts import residual_peak_ratios
from imcsr_live.recon.estimate import ParameterEstimator
from imcsr_live.recon.otf import OtfModel
from imcsr_live.recon.params import SimParameters, nominal_parameters
from imcsr_live.recon.preprocess import Prepared, check_raw, edge_taper, preprocess
from imcsr_live.recon.quality import FrcResult, frc, mcnr_map
from imcsr_live.recon.reconstructor import Reconstructor, SRFrame, model_otf, wiener_settings
from imcsr_live.recon.tracker import GuardSettings, ParameterTracker
from imcsr_live.recon.wiener import POST_FILTERS, WienerReconstructor, WienerSettings

__all__ = [
    "POST_FILTERS",
    "FrcResult",
    "GuardSettings",
    "OtfModel",
    "ParameterEstimator",
    "ParameterTracker",
    "Prepared",
    "Reconstructor",
    "SRFrame",
    "SimParameters",
    "WienerReconstructor",
    "WienerSettings",
    "check_raw",
    "edge_taper",
    "frc",
    "mcnr_map",
    "model_otf",
    "nominal_parameters",
    "preprocess",
    "residual_peak_ratios",
    "wiener_settings",
]
