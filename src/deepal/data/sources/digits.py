"""scikit-learn's 8x8 handwritten digits: the embedded default data set, no file needed."""

from __future__ import annotations

import numpy as np
import torch

from deepal.data.sources import Splits

#: The digits' classes (label = digit).
CLASSES = [str(d) for d in range(10)]

#: The fixed split: a quarter of the 1,797 images for testing, stratified by class.
TEST_SIZE = 0.25
SPLIT_SEED = 0


def load_digits() -> Splits:
    """The 1,797 8x8 digit images, split 1,347 / 450 the same way every time.

    Returns
    -------
    Splits
        Inputs ``float32`` of shape ``(N, 64)`` scaled to [0, 1] (pixel / 16), labels ``int64``
        0..9. The split is stratified, with ``random_state=0``, so results are comparable
        across runs and machines.

    Examples
    --------
    >>> splits = load_digits()
    >>> splits.X_train.shape, splits.X_test.shape
    (torch.Size([1347, 64]), torch.Size([450, 64]))
    """
    # Imported here: scikit-learn is slow to import and only this data set needs it.
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y
    )
    return Splits(
        torch.from_numpy(X_train), torch.from_numpy(y_train),
        torch.from_numpy(X_test), torch.from_numpy(y_test),
    )
