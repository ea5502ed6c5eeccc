"""Lab 05's edge-sharpness measure (labkit.metrics.edge_sharpness_ratio): known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit import region_metrics
from labkit.data import noise_blur, sample


@pytest.fixture(scope="module")
def photo():
    return sample.sample_images("heldout")[0][1][:128, :128]   # float32 HWC in [0, 1]


def test_identical_images_score_one(photo):
    assert region_metrics.edge_sharpness_ratio(photo, photo) == pytest.approx(1.0)
    u8 = np.round(photo * 255).astype(np.uint8)
    assert region_metrics.edge_sharpness_ratio(u8, u8) == pytest.approx(1.0)
    assert region_metrics.edge_sharpness_ratio(torch.from_numpy(photo).permute(2, 0, 1), photo) == pytest.approx(1.0)


def test_blur_scores_below_one_and_more_blur_lower(photo):
    small = noise_blur.motion_blur(photo, np.full((3, 3), 1 / 9, np.float32))
    large = noise_blur.motion_blur(photo, noise_blur.trajectory_kernel(15, length=12.0, seed=0))
    s_small, s_large = region_metrics.edge_sharpness_ratio(small, photo), region_metrics.edge_sharpness_ratio(large, photo)
    assert 0 < s_large < s_small < 1


def test_a_step_edge_known_answer():
    # a vertical step edge, and the same edge spread over 3 pixels: the slope (Sobel magnitude) at the edge drops
    sharp = np.zeros((32, 32), np.float32)
    sharp[:, 16:] = 1.0
    ramp = sharp.copy()
    ramp[:, 15], ramp[:, 16] = 1 / 3, 2 / 3
    assert region_metrics.edge_sharpness_ratio(ramp, sharp) < 1.0
    assert region_metrics.edge_sharpness_ratio(sharp, sharp) == pytest.approx(1.0)


def test_sharpening_scores_above_one(photo):
    blurred = noise_blur.motion_blur(photo, np.full((3, 3), 1 / 9, np.float32))
    sharpened = np.clip(photo + 1.5 * (photo - blurred), 0, 1)   # unsharp mask
    assert region_metrics.edge_sharpness_ratio(sharpened, photo) > 1.0


def test_measured_at_the_edges_blur_shows_more(photo):
    # every pixel with a gradient (edge_fraction 1) dilutes the effect with flat regions; the edges alone show it more
    blurred = noise_blur.motion_blur(photo, np.full((5, 5), 1 / 25, np.float32))
    at_edges = region_metrics.edge_sharpness_ratio(blurred, photo)
    everywhere = region_metrics.edge_sharpness_ratio(blurred, photo, edge_fraction=1.0)
    assert at_edges < everywhere < 1.0


def test_bad_inputs_are_refused(photo):
    with pytest.raises(ValueError, match="constant"):
        region_metrics.edge_sharpness_ratio(photo, np.full_like(photo, 0.5))
    with pytest.raises(ValueError, match="edge_fraction"):
        region_metrics.edge_sharpness_ratio(photo, photo, edge_fraction=0.0)
    with pytest.raises(ValueError):
        region_metrics.edge_sharpness_ratio(photo, photo[:64])
    with pytest.raises(ValueError, match="single images"):
        region_metrics.edge_sharpness_ratio(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
