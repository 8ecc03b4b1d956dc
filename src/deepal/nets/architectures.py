"""Networks for the built-in data sets.

Every network's ``forward`` returns ``(logits, embedding)`` and it has ``get_embedding_dim()``,
the contract :class:`~deepal.Net` and the strategies rely on. Dropout is always an
``nn.Dropout*`` module (never ``F.dropout``) so MC dropout can switch it on by itself.
The three CNNs have the layers of the DeepAL paper's networks, with embedding size 50.

Each network also splits its ``forward`` in two (the optional contract of
:meth:`deepal.Net.predict_prob_dropout_batches`): ``forward_deterministic`` holds every layer
before the first dropout and ``forward_sampled`` the rest, so MC dropout runs the first part
once per batch instead of once per sample. To make that part as long as possible, a channel
dropout comes after the max-pooling and ReLU that follow its convolution, not before: its mask
is one non-negative factor per example and channel, which commutes with both, so the output
and the random numbers drawn are exactly those of the order in DeepAL's code.

The CNNs flatten with ``flatten`` and never ``view``, so on a CPU their weights may be kept
channels-last, which about halves their training time there (:mod:`deepal.placement`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepal.nets.consistent_dropout import ConsistentMasks


def _default_layout(h: torch.Tensor) -> torch.Tensor:
    """``h`` in PyTorch's default layout: the copy that flattening a channels-last activation
    makes anyway, made once here instead of once per MC-dropout sample."""
    return h.contiguous()


class MNIST_Net(nn.Module):  # noqa: N801 - DeepAL's name
    """The DeepAL CNN for 1x28x28 images (MNIST, Fashion-MNIST).

    Parameters
    ----------
    n_classes:
        Number of classes (outputs).
    in_channels:
        Channels of the input images.

    Examples
    --------
    >>> import torch
    >>> logits, embedding = MNIST_Net()(torch.zeros(2, 1, 28, 28))
    >>> logits.shape, embedding.shape
    (torch.Size([2, 10]), torch.Size([2, 50]))
    """

    channels_last_on_cpu = True  # flattens with flatten(): see deepal.placement

    def __init__(self, n_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc1_drop = nn.Dropout()
        self.fc2 = nn.Linear(50, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_sampled(self.forward_deterministic(x))

    def forward_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        return _default_layout(F.relu(F.max_pool2d(self.conv2(x), 2)))

    def forward_sampled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = F.relu(self.fc1(self.conv2_drop(x).flatten(1)))
        return self.fc2(self.fc1_drop(embedding)), embedding

    def get_embedding_dim(self) -> int:
        return 50


class SVHN_Net(nn.Module):  # noqa: N801 - DeepAL's name
    """The DeepAL CNN for 3x32x32 SVHN images.

    Parameters
    ----------
    n_classes:
        Number of classes (outputs).
    in_channels:
        Channels of the input images.

    Examples
    --------
    >>> import torch
    >>> logits, embedding = SVHN_Net()(torch.zeros(2, 3, 32, 32))
    >>> logits.shape, embedding.shape
    (torch.Size([2, 10]), torch.Size([2, 50]))
    """

    channels_last_on_cpu = True  # flattens with flatten(): see deepal.placement

    def __init__(self, n_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3)
        self.conv2 = nn.Conv2d(32, 32, kernel_size=3)
        self.conv3 = nn.Conv2d(32, 32, kernel_size=3)
        self.conv3_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(1152, 400)
        self.fc2 = nn.Linear(400, 50)
        self.fc2_drop = nn.Dropout()
        self.fc3 = nn.Linear(50, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_sampled(self.forward_deterministic(x))

    def forward_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return _default_layout(F.relu(F.max_pool2d(self.conv3(x), 2)))

    def forward_sampled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.fc1(self.conv3_drop(x).flatten(1)))
        embedding = F.relu(self.fc2(x))
        return self.fc3(self.fc2_drop(embedding)), embedding

    def get_embedding_dim(self) -> int:
        return 50


class CIFAR10_Net(nn.Module):  # noqa: N801 - DeepAL's name
    """The DeepAL CNN for 3x32x32 CIFAR-10 images.

    Parameters
    ----------
    n_classes:
        Number of classes (outputs).
    in_channels:
        Channels of the input images.

    Examples
    --------
    >>> import torch
    >>> logits, embedding = CIFAR10_Net()(torch.zeros(2, 3, 32, 32))
    >>> logits.shape, embedding.shape
    (torch.Size([2, 10]), torch.Size([2, 50]))
    """

    channels_last_on_cpu = True  # flattens with flatten(): see deepal.placement

    def __init__(self, n_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=5)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=5)
        self.conv3_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(1024, 50)
        self.fc1_drop = nn.Dropout()
        self.fc2 = nn.Linear(50, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_sampled(self.forward_deterministic(x))

    def forward_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return _default_layout(F.relu(F.max_pool2d(self.conv3(x), 2)))

    def forward_sampled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = F.relu(self.fc1(self.conv3_drop(x).flatten(1)))
        return self.fc2(self.fc1_drop(embedding)), embedding

    def get_embedding_dim(self) -> int:
        return 50


class GalCNN(nn.Module):
    """The MNIST CNN of Gal, Islam & Ghahramani (2017), "Deep Bayesian Active Learning with
    Image Data": conv(32, 4x4)-ReLU-conv(32, 4x4)-ReLU-maxpool(2x2)-dropout(0.25)-dense(128)-
    ReLU-dropout(0.5)-dense(classes). The embedding is the 128-unit layer.

    Parameters
    ----------
    n_classes:
        Number of classes (outputs).
    in_channels:
        Channels of the input images.

    Examples
    --------
    >>> import torch
    >>> logits, embedding = GalCNN()(torch.zeros(2, 1, 28, 28))
    >>> logits.shape, embedding.shape
    (torch.Size([2, 10]), torch.Size([2, 128]))
    """

    channels_last_on_cpu = True  # flattens with flatten(): see deepal.placement

    def __init__(self, n_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=4)
        self.conv2 = nn.Conv2d(32, 32, kernel_size=4)
        self.conv_drop = nn.Dropout(0.25)
        self.fc1 = nn.Linear(32 * 11 * 11, 128)  # 28 -> 25 -> 22 -> pooled 11
        self.fc1_drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_sampled(self.forward_deterministic(x))

    def forward_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return _default_layout(F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2))

    def forward_sampled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = F.relu(self.fc1(self.conv_drop(x).flatten(1)))
        return self.fc2(self.fc1_drop(embedding)), embedding

    def get_embedding_dim(self) -> int:
        return 128


class BatchBALDCNN(nn.Module):
    """The MNIST CNN of Kirsch, van Amersfoort & Gal (2019), "BatchBALD": two blocks
    conv(5x5)-dropout-maxpool(2x2)-ReLU with 32 and 64 filters, dense(128)-dropout-ReLU,
    dense(classes). The dropout probabilities are PyTorch's default 0.5 (2-d dropout after
    the convolutions), as in the authors' code. The embedding is the 128-unit layer.

    Parameters
    ----------
    n_classes:
        Number of classes (outputs).
    in_channels:
        Channels of the input images.

    Examples
    --------
    >>> import torch
    >>> logits, embedding = BatchBALDCNN()(torch.zeros(2, 1, 28, 28))
    >>> logits.shape, embedding.shape
    (torch.Size([2, 10]), torch.Size([2, 128]))
    """

    channels_last_on_cpu = True  # flattens with flatten(): see deepal.placement

    def __init__(self, n_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=5)
        self.conv1_drop = nn.Dropout2d()
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(64 * 4 * 4, 128)  # 28 -> 24 -> 12 -> 8 -> 4
        self.fc1_drop = nn.Dropout()
        self.fc2 = nn.Linear(128, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_sampled(self.forward_deterministic(x))

    def forward_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.max_pool2d(self.conv1(x), 2))

    def forward_sampled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv2_drop(F.relu(F.max_pool2d(self.conv2(self.conv1_drop(x)), 2)))
        embedding = self.fc1_drop(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(embedding), embedding

    def forward_consistent(self, h: torch.Tensor, masks: ConsistentMasks) -> torch.Tensor:
        """The logits of all ``K`` consistent-dropout samples, shape ``(K, B, classes)``: what
        :meth:`forward_sampled` gives under each mask in turn, three to five times faster on a
        CPU (see :meth:`deepal.Net.predict_prob_dropout_batches`).

        Why it is cheaper: conv1's channel dropout zeroes whole input channels of conv2, and a
        convolution is a sum over its input channels, so sample ``k``'s conv2 is
        ``sum_c mask_k[c] * conv2_c(h_c)``. The 32 one-channel convolutions ``conv2_c(h_c)``
        are computed once and each sample costs a 32-term weighted sum instead of a
        convolution. They are laid out with the four positions of each 2x2 pooling window
        apart, so the pooling is a maximum over one dimension."""
        # Drawn in the order forward_sampled's dropout modules run, so the masks are the same.
        conv1_masks = masks.of(self.conv1_drop, h).flatten(1)  # (K, 32)
        conv2_masks = masks.of(self.conv2_drop, h.new_empty(0, 64, 4, 4)).flatten(1)
        fc1_masks = masks.of(self.fc1_drop, h.new_empty(0, 128))[:, None]  # (K, 1, 128)
        conv2_masks = conv2_masks.repeat_interleave(16, dim=1)[:, None]  # (K, 1, 64*4*4)
        conv2_bias = self.conv2.bias.repeat_interleave(16)  # type: ignore[union-attr]
        weights = self.conv2.weight.flatten(2).transpose(0, 1)[:, None]  # (32, 1, 64, 25)
        n_samples, logits = len(conv1_masks), []
        examples_per_step, samples_per_step = consistent_steps(h.device)
        for part in h.split(examples_per_step):
            batch = len(part)
            # columns[c, (b, di, dj), u, (i, j)]: input u of channel c under output position
            # (2i + di, 2j + dj) of conv2's 8x8 map
            columns = (F.unfold(part, 5).view(batch, 32, 25, 4, 2, 4, 2)
                       .permute(1, 0, 4, 6, 2, 3, 5).reshape(32, batch * 4, 25, 16))
            per_channel = (weights @ columns).reshape(32, -1)  # (32, B * 4 * 64 * 16)
            rows = []
            for start in range(0, n_samples, samples_per_step):
                stop = min(start + samples_per_step, n_samples)
                conv2 = (conv1_masks[start:stop] @ per_channel).view(stop - start, batch, 4, -1)
                x = F.relu(conv2.amax(dim=2) + conv2_bias) * conv2_masks[start:stop]
                embedding = F.relu(self.fc1(x)) * fc1_masks[start:stop]
                rows.append(self.fc2(embedding))
            logits.append(torch.cat(rows))
        return torch.cat(logits, dim=1)

    def get_embedding_dim(self) -> int:
        return 128


def consistent_steps(device: torch.device) -> tuple[int, int]:
    """Examples and samples per step of :meth:`BatchBALDCNN.forward_consistent` on ``device``.

    On a CPU, 32 examples x 25 samples keep a step's largest tensor near 13 MB, which measured
    fastest there. On an accelerator a step's cost is mostly launching its kernels (some 40
    for 32 examples x 100 samples; the MNIST pool is ~1,800 such steps), so steps are 16 times
    larger: 128 examples x 100 samples, a largest tensor of about 210 MB. The results are the
    same either way."""
    return (32, 25) if device.type == "cpu" else (128, 100)


class MLP(nn.Module):
    """A two-hidden-layer perceptron for feature vectors (the default for ``digits``).

    Parameters
    ----------
    n_features:
        Size of an input vector (inputs of any shape are flattened).
    n_classes:
        Number of classes (outputs).
    hidden:
        Units of the first hidden layer.
    embedding_dim:
        Units of the second hidden layer: the embedding.
    dropout:
        Dropout probability before the classifier (MC-dropout strategies sample it).

    Examples
    --------
    >>> import torch
    >>> logits, embedding = MLP()(torch.zeros(2, 64))
    >>> logits.shape, embedding.shape
    (torch.Size([2, 10]), torch.Size([2, 50]))
    """

    def __init__(
        self,
        n_features: int = 64,
        n_classes: int = 10,
        hidden: int = 128,
        embedding_dim: int = 50,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, embedding_dim),
            nn.ReLU(),
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(embedding_dim, n_classes)
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_sampled(self.forward_deterministic(x))

    def forward_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward_sampled(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.drop(embedding)), embedding

    def get_embedding_dim(self) -> int:
        return self.embedding_dim


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 images (3x3 stem, no initial max-pool), embedding size 512.

    A dropout layer before the classifier (``dropout``, default 0.3) gives the MC-dropout
    strategies something to sample; set it to 0 for the plain network.

    Parameters
    ----------
    n_classes:
        Number of classes (outputs).
    in_channels:
        Channels of the input images.
    dropout:
        Dropout probability before the classifier.

    Examples
    --------
    >>> import torch
    >>> logits, embedding = ResNet18()(torch.zeros(2, 3, 32, 32))
    >>> logits.shape, embedding.shape
    (torch.Size([2, 10]), torch.Size([2, 512]))
    """

    channels_last_on_cpu = True  # flattens with flatten(): see deepal.placement

    def __init__(self, n_classes: int = 10, in_channels: int = 3, dropout: float = 0.3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        in_planes = 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_BasicBlock(in_planes, planes, stride), _BasicBlock(planes, planes, 1)]
            in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_sampled(self.forward_deterministic(x))

    def forward_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1)

    def forward_sampled(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc(self.drop(embedding)), embedding

    def get_embedding_dim(self) -> int:
        return 512
