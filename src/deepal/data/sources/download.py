"""Where each data set's files come from, and fetching them safely.

:data:`SOURCES` is the one table of every file deepal can download: per data folder
(``mnist``, ``fashion-mnist``, ``svhn``, ``cifar-10``), the original file names, the public URL
of each and the MD5 its publisher gives. Loaders call :func:`ensure_files`, which downloads
only the files that are missing.

Redirecting downloads
---------------------
* Set the environment variable ``DEEPAL_MIRROR`` to a base URL (``https://host/path`` or
  ``file:///folder``): every file is then fetched from ``$DEEPAL_MIRROR/<folder>/<file name>``,
  e.g. ``$DEEPAL_MIRROR/mnist/train-images-idx3-ubyte.gz``. The MD5s are still checked.
* Or replace entries of :data:`SOURCES` (tests do this with ``monkeypatch.setitem``), e.g.
  ``SOURCES["mnist"] = tuple(dataclasses.replace(f, url=base + f.name) for f in ...)``.

Downloads go through pooch: the bytes go to a temporary file in the destination folder, its
MD5 is checked, and only then is it moved into place, so an interrupted or corrupted download
never leaves a file that looks complete. When a file is missing and cannot be fetched (offline,
or ``download=False``), the error names the files, the folder and the URLs to fetch them from by
hand.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pooch

from deepal.data.sources import refuse_non_file
from deepal.errors import CorruptDataError, DatasetNotFoundError

#: Seconds a download may wait for the server (per connection attempt and per read).
TIMEOUT = 60.0

#: Environment variable naming a mirror that replaces every URL of :data:`SOURCES`.
MIRROR_ENV = "DEEPAL_MIRROR"

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One original data file: its name on disk, where to download it, its published MD5."""

    name: str
    url: str
    md5: str


def _table(base_url: str, md5s: dict[str, str]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, base_url + name, md5) for name, md5 in md5s.items())


_IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: Per data folder: its files, their URLs and MD5s.
SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": _table(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        dict(zip(_IDX_NAMES, (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ), strict=True)),
    ),
    "fashion-mnist": _table(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        dict(zip(_IDX_NAMES, (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ), strict=True)),
    ),
    "svhn": _table(
        "http://ufldl.stanford.edu/housenumbers/",
        {
            "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
            "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
        },
    ),
    "cifar-10": _table(
        "https://www.cs.toronto.edu/~kriz/",
        {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
    ),
}


def md5sum(path: str | os.PathLike[str]) -> str:
    """The MD5 of a file, as 32 lowercase hex digits.

    Parameters
    ----------
    path:
        The file to hash; it is read in chunks, so size does not matter.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def url_for(folder_key: str, file: RemoteFile) -> str:
    """The URL to fetch ``file`` from: ``$DEEPAL_MIRROR/<folder_key>/<name>`` if that variable
    is set, else ``file.url``.

    Parameters
    ----------
    folder_key:
        The key of :data:`SOURCES` (also the data folder's name), e.g. ``"mnist"``.
    file:
        The file wanted.

    Returns
    -------
    str
        The URL.
    """
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return f"{mirror.rstrip('/')}/{folder_key}/{file.name}"
    return file.url


def download(
    url: str, dest: str | os.PathLike[str], md5: str | None, timeout: float = TIMEOUT
) -> Path:
    """Fetch ``url`` to ``dest`` with pooch, checking its MD5, so that ``dest`` appears complete
    or not at all.

    Parameters
    ----------
    url:
        Where to fetch from: ``https``, ``http`` (or ``ftp``) through pooch, or ``file`` (a
        local mirror).
    dest:
        The final path. Its folder is created if needed; pooch writes the bytes to a temporary
        file in that folder and moves it into place only once its MD5 matches. Folders made for
        a download that fails are removed again.
    md5:
        The expected MD5 (hex); ``None`` skips the check.
    timeout:
        Seconds to wait for the server to connect or send more data.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DatasetNotFoundError
        The server could not be reached, refused, timed out, answered with an HTTP error or
        stopped in the middle; or the file could not be written.
    CorruptDataError
        The downloaded bytes do not have the expected MD5; nothing is left behind.

    Examples
    --------
    >>> download("https://example.org/x.gz", "data/x.gz", md5=None)  # doctest: +SKIP
    PosixPath('data/x.gz')
    """
    dest = Path(dest)
    created = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]
    fetch = _Fetch(url, timeout)
    print(f"deepal: downloading {url} to {dest}", file=sys.stderr)
    try:
        _retrieve(url, dest, md5, fetch)
    except ValueError as error:  # pooch: the MD5 does not match (the download was deleted)
        if fetch.md5 is None:
            raise DatasetNotFoundError(f"could not download {url}: {error}") from error
        raise CorruptDataError(
            f"the file downloaded from {url} has MD5 {fetch.md5}, but {md5} was expected "
            f"(the download was deleted; try again, or fetch {dest.name} by hand)"
        ) from error
    except OSError as error:
        if not dest.parent.is_dir() or not os.access(dest.parent, os.W_OK):
            raise DatasetNotFoundError(f"cannot write to {dest.parent}: {error}") from error
        raise DatasetNotFoundError(f"could not download {url}: {error}") from error
    finally:
        # Whatever went wrong (including Ctrl-C), never leave the folders made for it.
        if not dest.exists():
            _remove_empty(created)
    return dest


def _retrieve(url: str, dest: Path, md5: str | None, fetch: _Fetch) -> None:
    """pooch's retrieve, quiet (deepal prints its own line), with its errors made deepal's."""
    import requests.exceptions

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        pooch.retrieve(
            url,
            known_hash=None if md5 is None else f"md5:{md5.lower()}",
            fname=dest.name,
            path=dest.parent,
            downloader=fetch,
        )
    except requests.exceptions.HTTPError as error:
        response = error.response
        code = "?" if response is None else response.status_code
        reason = "" if response is None else response.reason
        raise DatasetNotFoundError(
            f"could not download {url}: HTTP error {code} ({reason})"
        ) from error
    # Unreachable hosts, refused and reset connections, time-outs and a connection cut
    # mid-body are all RequestExceptions.
    except requests.exceptions.RequestException as error:
        raise DatasetNotFoundError(f"could not download {url}: {error}") from error
    finally:
        logger.setLevel(level)


class _Fetch:
    """pooch's downloader for ``url``: pooch's own for the network, a copy for ``file://``;
    it remembers the MD5 of what it wrote, for the error message when that is not the one
    expected."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.md5: str | None = None

    def __call__(self, url: str, output_file: str, pooch_object: object) -> None:
        if urlsplit(url).scheme == "file":
            _copy_local(url, output_file)
        else:
            downloader = pooch.HTTPDownloader(progressbar=False, timeout=self.timeout)
            if urlsplit(url).scheme == "ftp":
                downloader = pooch.FTPDownloader(progressbar=False, timeout=self.timeout)
            downloader(url, output_file, pooch_object)
        self.md5 = md5sum(output_file)


def _copy_local(url: str, output_file: str) -> None:
    """Copy the file a ``file://`` URL names (a local mirror) to ``output_file``."""
    source = Path(url2pathname(urlsplit(url).path))
    if not source.is_file():
        raise DatasetNotFoundError(f"could not download {url}: {source} is not a file")
    shutil.copyfile(source, output_file)


def _remove_empty(folders: list[Path]) -> None:
    """Remove those of ``folders`` (deepest first) that are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another download put a file there), or already gone
            return


def missing_files_message(dataset: str, folder: Path, files: Sequence[RemoteFile], key: str) -> str:
    """The advice given when files are missing: which ones, where they go, where to get them.

    Parameters
    ----------
    dataset:
        The data set's name, as the user asked for it (``"MNIST"``).
    folder:
        The folder the files are looked up in.
    files:
        The missing files.
    key:
        The :data:`SOURCES` key, to build the URLs (a mirror may change them).

    Returns
    -------
    str
        A message for :class:`~deepal.errors.DatasetNotFoundError`.
    """
    # One line, so the command line can print it as its one-line error.
    names = ", ".join(f.name for f in files)
    urls = " ".join(url_for(key, f) for f in files)
    return (
        f"{dataset}: missing {names} in {folder}; download them by hand from {urls} into "
        f"{folder} (or point data_dir / DEEPAL_DATA at a folder with a '{folder.name}' "
        "subfolder holding them)"
    )


def ensure_files(
    dataset: str,
    folder: str | os.PathLike[str],
    key: str,
    download_missing: bool = True,
    timeout: float = TIMEOUT,
) -> dict[str, Path]:
    """Make sure every file of :data:`SOURCES[key] <SOURCES>` is in ``folder``, downloading
    the missing ones if allowed.

    Parameters
    ----------
    dataset:
        The data set's name, for messages.
    folder:
        The data set's folder, e.g. ``<data_dir>/mnist``.
    key:
        The :data:`SOURCES` key of its files.
    download_missing:
        Whether to fetch missing files; if false, a missing file is an error.
    timeout:
        Passed to :func:`download`.

    Returns
    -------
    dict[str, Path]
        The path of each file, by its name.

    Raises
    ------
    DatasetNotFoundError
        A file is missing and downloading is off or failed; the message names the files, the
        folder and the URLs to get them from by hand.
    CorruptDataError
        A download's MD5 did not match.
    DeepALError
        A folder (or another non-file) is where a file should be.
    """
    folder = Path(folder)
    files = SOURCES[key]
    paths = {f.name: folder / f.name for f in files}
    for path in paths.values():
        # Else a folder of that name would count as missing and be downloaded onto.
        refuse_non_file(path, f"{dataset} data file", "remove it, or put the file there")
    missing = [f for f in files if not paths[f.name].is_file()]
    if not missing:
        return paths
    advice = missing_files_message(dataset, folder, missing, key)
    if not download_missing:
        raise DatasetNotFoundError(f"{advice}; downloading is off (download=False)")
    for f in missing:
        try:
            download(url_for(key, f), paths[f.name], f.md5, timeout=timeout)
        except DatasetNotFoundError as error:
            raise DatasetNotFoundError(f"{error}; {advice}") from error
    return paths
