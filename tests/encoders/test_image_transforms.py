"""Image tower preprocessing: sizes, normalisation, determinism of eval, augmentation in train."""

import pytest
import torch
from PIL import Image

from mmssl.encoders import build_tower


@pytest.fixture(scope="module")
def vit():
    return build_tower("vit-tiny-64")


def _image():
    image = Image.new("RGBA", (128, 128), (255, 255, 255, 0))
    image.paste((200, 30, 30, 255), (16, 40, 64, 100))  # an off-centre red block
    return image


def test_eval_transform_is_deterministic_and_normalised(vit):
    transform = vit.transform(train=False)
    x = transform(_image())
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert torch.equal(x, transform(_image()))
    white = transform(Image.new("RGB", (128, 128), (255, 255, 255)))
    expected = (1 - torch.tensor(vit.mean)) / torch.tensor(vit.std)  # CLIP's mean/std
    assert torch.allclose(white[:, 32, 32], expected, atol=1e-4)


def test_train_transform_augments(vit):
    torch.manual_seed(0)
    transform = vit.transform(train=True)
    views = torch.stack([transform(_image()) for _ in range(4)])
    assert views.shape == (4, 3, 64, 64)
    assert (views[0] - views[1]).abs().mean() > 1e-3


def test_flip_can_be_turned_off():
    tower = build_tower("resnet-tiny-64", hflip=False)
    names = [type(t).__name__ for t in tower.transform(train=True).transforms]
    assert "RandomHorizontalFlip" not in names and "RandomResizedCrop" in names
    assert tower.image_size == 64 and tower.prepare([_image()]).shape == (1, 3, 64, 64)
