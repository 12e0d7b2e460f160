"""The zoo matches torchvision's architectures: same parameter names and counts, so checkpoints load as is."""
import pytest
import torch

from edgeq import models
from edgeq.errors import EdgeqError

# torchvision's published parameter counts (torchvision.models docs)
TORCHVISION = {"resnet18": 11_689_512, "resnet50": 25_557_032, "mobilenet_v2": 3_504_872}
KEYS = {"resnet18": ["conv1.weight", "bn1.running_var", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
                     "layer4.1.bn2.bias", "fc.weight"],
        "resnet50": ["layer1.0.conv3.weight", "layer3.5.bn3.running_mean", "layer4.0.downsample.1.weight", "fc.bias"],
        "mobilenet_v2": ["features.0.0.weight", "features.0.1.running_var", "features.1.conv.0.0.weight",
                         "features.2.conv.1.0.weight", "features.17.conv.3.weight", "features.18.1.bias",
                         "classifier.1.weight"]}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_compatible(name):
    m = models.load(name).module
    assert sum(p.numel() for p in m.parameters()) == TORCHVISION[name]
    state = m.state_dict()
    assert all(k in state for k in KEYS[name])
    fresh = models.load(name).module
    fresh.load_state_dict(state)  # a checkpoint with these names loads strictly


def test_user_model_file(tmp_path):
    f = tmp_path / "net.py"
    f.write_text("import torch\nINPUT_SHAPE = (1, 2, 4, 4)\n"
                 "def make():\n    return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.ReLU())\n")
    m = models.load(f"{f}:make")
    assert m.input_shape == (1, 2, 4, 4) and m.calibration.shape[1:] == (2, 4, 4)
    with pytest.raises(EdgeqError, match="has no 'nope'"):
        models.load(f"{f}:nope")


def test_digits_is_trained_deterministically(digits):
    from edgeq.models.digits import _train, accuracy

    x, y = digits.test_set
    with torch.no_grad():
        assert accuracy(digits.module(x), y) > 95
    retrained = _train().state_dict()  # the cached weights came from another run of the same training
    assert all(torch.equal(retrained[k], v) for k, v in digits.module.state_dict().items())
