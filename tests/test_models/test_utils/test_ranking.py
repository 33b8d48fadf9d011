import torch

from mmdet_pep.models.utils.ranking import topk_stable


def test_topk_stable_breaks_ties_by_the_lower_index():
    """Equal values (a plateau of peaks) come out in index order, as ONNX
    TopK returns them; the values equal torch.topk's."""
    x = torch.zeros(2, 64)
    x[:, [3, 10, 20, 30, 40, 50]] = 1.
    x[1, 60] = 2.
    values, inds = topk_stable(x, 4)
    assert inds.tolist() == [[3, 10, 20, 30], [60, 3, 10, 20]]
    torch.testing.assert_close(values, x.topk(4).values)
    torch.manual_seed(0)
    y = torch.rand(5, 33)
    torch.testing.assert_close(topk_stable(y, 7)[1], y.topk(7).indices)
