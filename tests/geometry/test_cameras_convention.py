"""The pixel convention of geometry/cameras.py: integer pixel centres, the photo's centre carried into
processed pixels exactly, fy / fx of the resize."""

import numpy as np
import torch

from pointmap.geometry.cameras import focal_aspect, image_centre, original_centre_in_processed

# The 224 rule on a 640 x 480 photo: resize to 299 x 224 (x by 640 / 299, y by 480 / 224), keep columns
# 37..260; with integer pixel centres x_orig = sx (x + 37 + 0.5) - 0.5 and y_orig = sy (y + 0.5) - 0.5.
SX, SY = 640 / 299, 480 / 224
TO_ORIGINAL = torch.tensor([[[SX, 0, SX * 37.5 - 0.5], [0, SY, SY * 0.5 - 0.5], [0, 0, 1]]], dtype=torch.float64)


def test_image_centre_is_half_a_pixel_left_and_up_of_dusts_w_over_2():
    torch.testing.assert_close(image_centre(480, 640), torch.tensor([319.5, 239.5]))
    torch.testing.assert_close(image_centre(1, 1), torch.tensor([0.0, 0.0]))  # one pixel: its own centre


def test_photo_centre_in_processed_pixels_of_the_224_rule():
    centre = original_centre_in_processed(TO_ORIGINAL, torch.tensor([[480.0, 640.0]]))
    # x: (319.5 + 0.5) / sx - 0.5 - 37 = 149.5 - 37.5 = 112 (the crop keeps 37 columns left, 38 right);
    # y: (239.5 + 0.5) / sy - 0.5 = 111.5, the processed image's own centre.
    torch.testing.assert_close(centre, torch.tensor([[112.0, 111.5]], dtype=torch.float64), rtol=0, atol=1e-12)
    back = TO_ORIGINAL[0] @ torch.tensor([112.0, 111.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(back[:2], torch.tensor([319.5, 239.5], dtype=torch.float64), rtol=0, atol=1e-12)


def test_focal_aspect_keeps_the_photo_square():
    aspect = focal_aspect(TO_ORIGINAL)
    assert abs(aspect.item() - (640 / 299) / (480 / 224)) < 1e-15  # 0.998885...
    fx = 502.30 / SX
    K_photo = TO_ORIGINAL[0].numpy() @ np.diag([fx, fx * aspect.item(), 1.0])
    np.testing.assert_allclose([K_photo[0, 0], K_photo[1, 1]], [502.30, 502.30], rtol=1e-14)
