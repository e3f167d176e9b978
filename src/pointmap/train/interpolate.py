"""Weight interpolation between two networks of one configuration (WiSE-FT, Wortsman et al., CVPR 2022).

A fine-tuned network and the network it started from lie in one basin of the loss; points on the line between
them often keep most of what the fine-tuning added and lose less of what the start already did well. The
bundled model of chunk 8 is such a point (configs/bundled-224-chunk8.toml).
"""

from __future__ import annotations

import torch

from pointmap.model.network import DUSt3R


def interpolate_models(start: DUSt3R, end: DUSt3R, weight: float) -> DUSt3R:
    """A new network with parameters (1 - weight) * start + weight * end, computed in float32.

    Args:
        start, end: networks of the same ModelConfig (typically a model and a fine-tuned copy of it).
        weight: 0 gives `start`, 1 gives `end`; values outside [0, 1] are refused.
    Returns:
        A DUSt3R in `start`'s dtype and on its device, in eval mode.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")
    if start.config != end.config:
        raise ValueError(f"the two networks differ in configuration: {start.config} against {end.config}")
    end_state = end.state_dict()  # every DUSt3R tensor is a float parameter
    mixed = {  # float32 here; load_state_dict rounds them once into the new network's dtype
        name: torch.lerp(tensor.float(), end_state[name].to(tensor.device).float(), weight)
        for name, tensor in start.state_dict().items()
    }
    first = next(start.parameters())
    model = DUSt3R(start.config, device=first.device, dtype=first.dtype)
    model.load_state_dict(mixed)
    return model.eval()
