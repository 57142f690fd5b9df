"""The SIM burst on a Micro-Manager core, shared by the pymmcore-plus and pycromanager backends.

Triggered: the SLM holds the running order of the A*P patterns; one camera sequence of A*P frames, each
exposure's trigger advances the SLM (``startSequenceAcquisition(9, 0, True)`` + pop 9; driven directly, not via
an MDA, because hardware-sequencing SLM images through the MDA engine fails its validation). Software-stepped:
set pattern, snap, A*P times. Every burst is checked by :func:`check_burst`; a slip triggers a re-synchronisation
(stop the camera, restart the SLM running order at pattern 0) and a new burst, up to ``resync_attempts`` times.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.errors import (
    AcquisitionAbortedError,
    CameraTimeoutError,
    DeviceMissingError,
    FrameSlipError,
    HardwareConfigError,
    PixelTypeError,
)
from imcsr_live.hardware.base import FrameMeta, RawStack
from imcsr_live.hardware.mmcalls import CoreCalls
from imcsr_live.hardware.patterns import sim_pattern_images, slm_pixel_um
from imcsr_live.hardware.sync import check_burst

log = logging.getLogger(__name__)

EXTERNAL_SLM = "external"
POLL_S = 0.0005


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class BurstEngine:
    """Prepares a core for SIM bursts and acquires checked ``RawStack`` s from it."""

    def __init__(self, calls: CoreCalls, rig: RigConfig) -> None:
        self.calls = calls
        self.rig = rig
        self.n_frames = rig.sim.frames_per_timepoint
        self.camera = ""
        self.slm: str | None = None
        self.patterns: np.ndarray | None = None
        self.shape: tuple[int, int] = (0, 0)
        self.preset: str | None = None
        self._abort = threading.Event()
        self._index = 0

    # ------------------------------------------------------------------------------------------- set-up
    def prepare(self) -> None:
        """Check roles and pixel type, set exposure and channel preset, load the SLM running order."""
        c, cfg = self.calls, self.rig.backend
        devices = c.loaded_devices()
        listed = ", ".join(d for d in devices if d != "Core") or "none"
        self.camera = c.camera()
        if not self.camera:
            raise DeviceMissingError(
                "the Micro-Manager configuration selects no camera; add 'Property,Core,Camera,<label>' to the .cfg "
                f"(loaded devices: {listed})"
            )
        if cfg.slm == EXTERNAL_SLM:
            self.slm = None
        else:
            slm = cfg.slm or c.slm()
            if cfg.slm and cfg.slm not in devices:
                raise DeviceMissingError(
                    f"[backend] slm = {cfg.slm!r} but the Micro-Manager configuration has no such device (loaded: "
                    f'{listed}); add it to the .cfg, fix the label, or use slm = "external"'
                )
            if not slm:
                raise DeviceMissingError(
                    "no SLM/DMD device: the .cfg selects none ('Property,Core,SLM,<label>'); set [backend] slm to its "
                    'label, or slm = "external" if the pattern running order is driven by hardware Micro-Manager '
                    "does not control"
                )
            self.slm = slm
        if cfg.burst == "software" and self.slm is None:
            raise HardwareConfigError(
                'software-stepped bursts need an SLM that Micro-Manager controls; with slm = "external" use '
                'burst = "triggered"'
            )
        if not c.shutter():
            raise DeviceMissingError(
                "the Micro-Manager configuration selects no shutter; add one ('Property,Core,Shutter,<label>'; a "
                "laser/AOTF blanking line or the Utilities 'Property Shutter' works) so the sample is only lit "
                "during bursts"
            )
        if cfg.channel_group:
            self.set_channel_preset(self.rig.acquisition.channel_preset)
        c.set_exposure(self.rig.acquisition.exposure_ms)
        h, w, bpp, ncomp = c.image_format()
        if bpp != 2 or ncomp != 1:
            kind = f"{8 * bpp}-bit" + (" RGB" if ncomp > 1 else " greyscale")
            raise PixelTypeError(
                f"camera {self.camera!r} delivers {kind} pixels; SIM reconstruction needs 16-bit greyscale: set "
                f"'Property,{self.camera},PixelType,16bit' in the .cfg (or the camera's bit depth to 12-16 bit)"
            )
        self.shape = (h, w)
        if self.slm is not None:
            slm_shape = c.slm_shape(self.slm)
            self.patterns = sim_pattern_images(self.rig, slm_shape, slm_pixel_um(self.rig, w, slm_shape[1]))
            if cfg.burst == "triggered":
                c.slm_load_sequence(self.slm, list(self.patterns))
        c.set_auto_shutter(False)  # the burst opens and closes the shutter itself, once per burst
        c.set_shutter_open(False)

    def channel_presets(self) -> list[str]:
        group = self.rig.backend.channel_group
        return self.calls.presets(group) if group and group in self.calls.config_groups() else []

    def set_channel_preset(self, preset: str) -> None:
        """Apply ``preset`` of the rig's channel group (e.g. a laser line), waiting until the devices settle."""
        group = self.rig.backend.channel_group
        groups = self.calls.config_groups()
        if group not in groups:
            raise DeviceMissingError(
                f"the Micro-Manager configuration has no config group {group!r} (groups: {', '.join(groups) or 'none'})"
                f'; define it with a {preset!r} preset, or set [backend] channel_group = "" to leave channels alone'
            )
        presets = self.calls.presets(group)
        if preset not in presets:
            raise DeviceMissingError(
                f"config group {group!r} has no preset {preset!r} (presets: {', '.join(presets) or 'none'}); "
                "fix [acquisition] channel_preset or add the preset to the .cfg"
            )
        self.calls.set_config(group, preset)
        self.preset = preset

    # -------------------------------------------------------------------------------------- acquisition
    def abort(self) -> None:
        """Make a running (or the next) burst stop with :class:`AcquisitionAbortedError`."""
        self._abort.set()

    def acquire(self, timeout_s: float) -> RawStack:
        """One checked burst (re-synchronising after slips). ``timeout_s`` = longest wait for any one frame."""
        self._abort.clear()
        reasons: list[str] = []
        attempts = self.rig.backend.resync_attempts
        for attempt in range(attempts + 1):
            t0 = time.monotonic()
            if self.rig.backend.burst == "triggered":
                frames, meta = self._triggered(timeout_s)
            else:
                frames, meta = self._software()
            check = check_burst(
                [m.pattern_index for m in meta],
                [m.image_number for m in meta],
                [m.camera_time_ms for m in meta],
                frame_period_ms=self.rig.acquisition.exposure_ms,
            )
            if check.ok:
                if check.reordered:
                    log.warning("burst %d: %s", self._index, check.reason)
                order = list(check.order)
                stack = RawStack(
                    frames=np.ascontiguousarray(frames[order]),
                    meta=[meta[i] for i in order],
                    index=self._index,
                    t_start_s=t0,
                    t_end_s=time.monotonic(),
                    resyncs=attempt,
                    reordered=check.reordered,
                    info=self._info(),
                )
                self._index += 1
                return stack
            reasons.append(check.reason)
            log.warning("burst %d: frame slip (%s); re-synchronising", self._index, check.reason)
            self._resync()
        raise FrameSlipError(
            f"camera frames and SLM patterns stayed out of step after {attempts} re-synchronisation(s) "
            f"({'; '.join(reasons)}): check the camera -> SLM trigger cable and that the SLM running order holds "
            f"exactly the {self.n_frames} SIM patterns, angle-major"
        )

    def _info(self) -> dict[str, Any]:
        return {
            "mode": self.rig.backend.burst,
            "camera": self.camera,
            "slm": self.slm or EXTERNAL_SLM,
            "preset": self.preset,
            "exposure_ms": self.rig.acquisition.exposure_ms,
            "core": self.calls.style,
        }

    def _check_abort(self) -> None:
        if self._abort.is_set():
            raise AcquisitionAbortedError("acquisition aborted on request; start it again when ready")

    def _to_u16(self, img: np.ndarray) -> np.ndarray:
        if img.dtype != np.uint16:
            if img.dtype.itemsize != 2:
                raise PixelTypeError(
                    f"camera {self.camera!r} sent {img.dtype} pixels mid-burst; set its PixelType to 16bit"
                )
            img = img.view(np.uint16)
        if img.shape != self.shape:
            raise PixelTypeError(
                f"camera {self.camera!r} sent a {img.shape} frame, expected {self.shape}: the ROI or binning changed "
                "during acquisition; stop other software that drives the camera"
            )
        return img

    def _meta(self, tags: dict[str, str], pattern_index: int | None = None) -> FrameMeta:
        tag = self.rig.backend.pattern_index_tag
        if tag and tag in tags:
            pattern_index = _int_or_none(tags[tag])
        return FrameMeta(
            pattern_index=pattern_index,
            image_number=_int_or_none(tags.get("ImageNumber")),
            camera_time_ms=_float_or_none(tags.get("ElapsedTime-ms")),
            received_s=time.monotonic(),
            tags=tags,
        )

    def _triggered(self, timeout_s: float) -> tuple[np.ndarray, list[FrameMeta]]:
        c, n = self.calls, self.n_frames
        self._check_abort()
        c.stop_sequence()
        if self.slm is not None:
            c.slm_start_sequence(self.slm)  # the running order (re)starts at pattern 0
        frames = np.empty((n, *self.shape), dtype=np.uint16)
        meta: list[FrameMeta] = []
        c.set_shutter_open(True)
        try:
            c.start_sequence(n)
            last = time.monotonic()
            while len(meta) < n:
                self._check_abort()
                running = c.is_sequence_running()  # read before the count: no race with the last frame
                if c.remaining() > 0:
                    img, tags = c.pop()
                    frames[len(meta)] = self._to_u16(img)
                    meta.append(self._meta(tags))
                    last = time.monotonic()
                    continue
                waited = time.monotonic() - last
                if not running or waited > timeout_s:
                    what = "stopped the sequence" if not running else f"then nothing for {timeout_s:g} s"
                    raise CameraTimeoutError(
                        f"camera {self.camera!r} delivered {len(meta)} of {n} burst frames, {what}: check the "
                        f"camera's trigger mode and the trigger cable to the SLM, and that [backend] timeout_s "
                        f"exceeds the exposure ({self.rig.acquisition.exposure_ms:g} ms)"
                    )
                time.sleep(POLL_S)
        finally:
            self._stop_quietly()
        return frames, meta

    def _software(self) -> tuple[np.ndarray, list[FrameMeta]]:
        c, n = self.calls, self.n_frames
        assert self.slm is not None and self.patterns is not None
        tag = self.rig.backend.pattern_index_tag
        report = bool(tag) and c.has_property(self.camera, str(tag))
        frames = np.empty((n, *self.shape), dtype=np.uint16)
        meta: list[FrameMeta] = []
        c.set_shutter_open(True)
        try:
            for i in range(n):
                self._check_abort()
                c.slm_set_image(self.slm, self.patterns[i])
                c.slm_display(self.slm)
                frames[i] = self._to_u16(c.snap())
                index = _int_or_none(c.get_property(self.camera, str(tag))) if report else i
                meta.append(self._meta({"ImageNumber": str(i)}, pattern_index=index))
        finally:
            c.set_shutter_open(False)
        return frames, meta

    def _stop_quietly(self) -> None:
        c = self.calls
        slm = self.slm
        steps: list[Callable[[], object]] = [c.stop_sequence, lambda: c.set_shutter_open(False)]
        if slm:
            steps.insert(1, lambda: c.slm_stop_sequence(slm))
        for step in steps:
            try:
                step()
            except Exception as exc:  # cleanup must not hide the error that got us here
                log.warning("cleanup after burst failed: %s", exc)

    def _resync(self) -> None:
        self._stop_quietly()
