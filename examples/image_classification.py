"""An image classification dataset from a folder of images, and a PyTorch training loop.

Builds ``<folder>/<class>/<n>.jpg`` (a few generated images per class), imports it with
``lakefmt.from_image_folder`` (files go in as their original bytes; labels from the
subfolders), then trains a tiny CNN for one epoch over ``ds.pytorch(...)``.

Run with ``python examples/image_classification.py [URL]`` (default: a fresh ``tmp://``
dataset). Needs Pillow and torch (``pip install 'lakefmt[media,torch]'``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import lakefmt

CLASSES = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 200)}
PER_CLASS = 40
SIZE = 32


def make_image_folder(root: Path) -> dict[str, bytes]:
    """Write noisy images tinted by their class; return {relative path: file bytes}."""
    from PIL import Image

    rng = np.random.default_rng(0)
    files: dict[str, bytes] = {}
    for name, colour in CLASSES.items():
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            noise = rng.integers(-60, 60, size=(SIZE, SIZE, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            path = root / name / f"{i:03d}.jpg"
            Image.fromarray(pixels).save(path, quality=90)
            files[f"{name}/{path.name}"] = path.read_bytes()
    return files


def main(url: str = "tmp://") -> None:
    """Import the generated folder into ``url`` and train one epoch on it."""
    import torch
    from torch import nn

    with tempfile.TemporaryDirectory() as folder:
        files = make_image_folder(Path(folder))
        ds = lakefmt.from_image_folder(folder, url, labels_from_subfolders=True)

    class_names = ds.schema["label"].params()["class_names"]
    print(f"imported {len(ds)} images, classes {class_names}, columns {list(ds.schema)}")
    assert len(ds) == len(CLASSES) * PER_CLASS
    assert class_names == sorted(CLASSES)
    # the stored bytes are the original files, labels come from the subfolders
    for i in (0, len(ds) // 2, len(ds) - 1):
        name = ds["filename"][i]
        assert ds["image"].get_bytes(i) == files[name]
        assert class_names[int(ds["label"][i])] == name.split("/")[0]
    first = ds["image"][0]
    print(f"image 0: {ds['filename'][0]} decodes to {first.shape} {first.dtype}")
    assert first.shape == (SIZE, SIZE, 3)

    def to_tensors(row: dict) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(np.array(row["image"])).permute(2, 0, 1).float() / 255.0
        return image, int(row["label"])

    loader = torch.utils.data.DataLoader(
        ds.pytorch(transform=to_tensors, shuffle=True, columns=["image", "label"]),
        batch_size=16,
    )

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Flatten(),
        nn.Linear(8 * (SIZE // 4) ** 2, len(class_names)),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()

    seen = correct = 0
    losses = []
    model.train()
    for images, labels in loader:  # one epoch
        assert images.shape[1:] == (3, SIZE, SIZE) and images.dtype == torch.float32
        logits = model(images)
        loss = loss_fn(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        seen += len(labels)
        correct += int((logits.argmax(1) == labels).sum())
    print(
        f"one epoch: {seen} images in {len(losses)} batches, loss {losses[0]:.3f} -> "
        f"{losses[-1]:.3f}, training accuracy {correct / seen:.0%}"
    )
    assert seen == len(ds), "every image comes exactly once per epoch"
    assert all(np.isfinite(losses))

    model.eval()
    with torch.no_grad():
        images, labels = next(
            iter(torch.utils.data.DataLoader(ds.pytorch(transform=to_tensors), batch_size=len(ds)))
        )
        accuracy = float((model(images).argmax(1) == labels).float().mean())
    print(f"accuracy on all {len(ds)} images after one epoch: {accuracy:.0%}")
    assert accuracy > 1 / len(class_names)  # better than chance on these easy colours


if __name__ == "__main__":
    main(*sys.argv[1:])
