"""napari sample data: a synthetic cell seen by the simulated SIM microscope, with its ground truth.

The only napari module that uses the simulator (tests/test_dependencies.py lists it): a user without a microscope
gets a raw SIM stack to try "IMC-SR separate" on (tick "reconstruct first", shipped simulated rig), and the true
structures to compare with. The simulator is imported inside the function, so the plugin's reader and widget
never load it.
"""

from __future__ import annotations

from imcsr_live.napari.layers import LayerData, grey_layer, spatial_layer_kwargs, structure_layer

#: Camera frame side of the sample (SR frames are twice this): small enough to simulate in about a second.
SAMPLE_RAW_SIDE = 128


def synthetic_cell(seed: int = 0, raw_side: int = SAMPLE_RAW_SIDE) -> list[LayerData]:
    """One timepoint: the raw SIM stack (9, Y, X) uint16 and the per-structure truth on the SR grid."""
    from imcsr_live.config import load_rig_config
    from imcsr_live.rigs import default_rig
    from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings  # lazy: see the module docstring

    rig = load_rig_config(default_rig("simulated"))
    microscope = SyntheticMicroscope(rig, WorldSettings(raw_shape=(raw_side, raw_side), seed=seed))
    point = microscope.next_timepoint()
    camera_um, sr_um = rig.optics.pixel_size_um, microscope.sr_pixel_size_um
    raw = grey_layer(
        point.raw, "raw SIM (synthetic cell)", spatial_layer_kwargs("cyx", (1.0, camera_um, camera_um)), visible=True
    )
    truth_geometry = spatial_layer_kwargs("yx", (sr_um, sr_um))
    truth = [
        structure_layer(
            point.ground_truth[c],
            f"ground truth: {structure.name}",
            structure.color,
            truth_geometry,
            (0.0, float(point.ground_truth[c].max()) or 1.0),
            visible=False,
        )
        for c, structure in enumerate(rig.structures)
    ]
    return [raw, *truth]
