import numpy as np
import pytest
import torch

from pointmap.images import View
from pointmap.inference import PairPredictions, infer_pairs, order_pairs
from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R
from pointmap.pairs import make_pairs

TINY = dict(enc_embed_dim=64, enc_depth=2, enc_num_heads=4, dec_embed_dim=48, dec_depth=2, dec_num_heads=4)


def tiny_model(head_type: str = "linear") -> DUSt3R:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return DUSt3R(ModelConfig(image_size=224, head_type=head_type, **TINY)).eval()


def random_views(shapes, seed=0) -> list[View]:
    gen = torch.Generator().manual_seed(seed)
    return [
        View(torch.rand(3, h, w, generator=gen) * 2 - 1, (h, w), f"{k}.png", np.eye(3), (h, w))
        for k, (h, w) in enumerate(shapes)
    ]


class CallLog:
    """Records the batch of every encode and decode call of a model."""

    def __init__(self, model: DUSt3R):
        self.encoded, self.decoded = [], []
        encode, decode = model.encode, model.decode

        def logged_encode(img):
            self.encoded.append(img.shape[0])
            return encode(img)

        def logged_decode(enc1, enc2):
            self.decoded.append(len(enc1))
            return decode(enc1, enc2)

        model.encode, model.decode = logged_encode, logged_decode


@pytest.mark.parametrize("head_type", ["linear", pytest.param("dpt", marks=pytest.mark.slow)])
def test_cache_equals_per_pair_inference(head_type):
    # Mixed shapes: two landscape, one portrait image; batches of 3 mix edges of different images.
    model = tiny_model(head_type)
    views = random_views([(32, 48), (32, 48), (48, 32), (32, 48)])
    pairs = make_pairs(len(views))
    preds = infer_pairs(model, views, pairs, batch_size=3, verbose=False)
    assert isinstance(preds.pts_i, list) and preds.edges == pairs
    for k, (i, j) in enumerate(pairs):
        with torch.no_grad():
            ref = model.predict_pair(views[i].img[None], views[j].img[None])
        # The same float32 arithmetic on the same rows, batched differently: BLAS blocks its sums by
        # batch size, so the last bits differ (measured <= 1.3e-6 + 1e-5 |ref| with values up to 14).
        for ours, theirs in zip(preds.edge(i, j), (ref.pts1[0], ref.pts2[0], ref.conf1[0], ref.conf2[0]), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        assert preds.pts_j[k].shape == (*views[j].true_shape, 3)


def test_each_image_encoded_once_and_both_directions_decoded_together():
    model = tiny_model()
    log = CallLog(model)
    views = random_views([(32, 48)] * 5)
    pairs = make_pairs(5)
    preds = infer_pairs(model, views, pairs, batch_size=4, verbose=False)
    assert sum(log.encoded) == 5 and log.encoded == [4, 1]
    assert log.decoded == [4, 4, 4, 4, 4]
    # Same shapes: stacked tensors, on the CPU, float32.
    assert preds.pts_i.shape == (20, 32, 48, 3) and preds.conf_j.shape == (20, 32, 48)
    assert preds.pts_i.device.type == "cpu" and preds.pts_i.dtype == torch.float32
    assert not preds.pts_i.is_inference()
    # (i, j) and (j, i) of each edge sit in the same batch of 4.
    groups = order_pairs(pairs, [v.true_shape for v in views])
    assert len(groups) == 1
    batches = [groups[0][s : s + 4] for s in range(0, 20, 4)]
    for batch in batches:
        edges = {pairs[k] for k in batch}
        assert all((j, i) in edges for i, j in edges)


def test_order_pairs_groups_by_shape_pair():
    shapes = [(32, 48), (48, 32), (32, 48)]
    pairs = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]
    groups = order_pairs(pairs, shapes)
    keyed = {(shapes[pairs[g[0]][0]], shapes[pairs[g[0]][1]]): [pairs[k] for k in g] for g in groups}
    assert keyed == {
        ((32, 48), (48, 32)): [(0, 1), (2, 1)],
        ((48, 32), (32, 48)): [(1, 0), (1, 2)],
        ((32, 48), (32, 48)): [(0, 2), (2, 0)],
    }


def test_autocast_outputs_float32_close_to_reference():
    model = tiny_model()
    views = random_views([(32, 48)] * 3)
    pairs = make_pairs(3)
    reference = infer_pairs(model, views, pairs, verbose=False)
    for amp in ("bf16", torch.float16):
        fast = infer_pairs(model, views, pairs, amp_dtype=amp, verbose=False)
        assert fast.pts_i.dtype == torch.float32
        scale = reference.pts_i.abs().max()
        assert float((fast.pts_i - reference.pts_i).abs().max()) < 0.05 * float(scale)
        assert float((fast.pts_i - reference.pts_i).abs().max()) > 0  # autocast really ran


def test_edge_lookup_and_hand_built_predictions():
    model = tiny_model()
    views = random_views([(32, 48)] * 2)
    preds = infer_pairs(model, views, [(0, 1), (1, 0)], verbose=False)
    pts_i, pts_j, conf_i, conf_j = preds.edge(1, 0)
    assert torch.equal(pts_i, preds.pts_i[1]) and torch.equal(conf_j, preds.conf_j[1])
    with pytest.raises(KeyError, match=r"edge \(0, 0\) was not predicted"):
        preds.edge(0, 0)
    by_hand = PairPredictions(
        edges=[(0, 1)], pts_i=pts_j[None], pts_j=pts_i[None], conf_i=conf_j[None], conf_j=conf_i[None]
    )
    assert by_hand.num_images == 2 and len(by_hand) == 1


def test_input_errors():
    model = tiny_model()
    views = random_views([(32, 48)] * 2)
    with pytest.raises(ValueError, match=r"pair \(0, 2\) names a missing image: there are 2 views"):
        infer_pairs(model, views, [(0, 2)], verbose=False)
    with pytest.raises(ValueError, match="no pairs"):
        infer_pairs(model, views, [], verbose=False)
    with pytest.raises(ValueError, match="no views"):
        infer_pairs(model, [], [(0, 1)], verbose=False)
    with pytest.raises(ValueError, match="amp_dtype='int8'"):
        infer_pairs(model, views, [(0, 1)], amp_dtype="int8", verbose=False)
