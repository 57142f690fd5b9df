"""The malloc setting that keeps long live runs at flat memory is applied on Linux (glibc)."""

from __future__ import annotations

import sys

import pytest

from imcsr_live.pipeline.memory import keep_large_allocations_unpooled


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_fixed_mmap_threshold_is_applied_and_idempotent() -> None:
    assert keep_large_allocations_unpooled() is True
    assert keep_large_allocations_unpooled() is True
