"""3D volumes: NIfTI, MetaImage and NumPy files and DICOM series read to float32 voxels with their geometry (no TF).

SimpleITK reads every format here except `.npy`. One library reads all of them, knows each one's physical
voxel spacing, origin and orientation, and applies a file's intensity scaling: NIfTI `scl_slope`/`scl_inter`,
and DICOM Rescale Slope/Intercept, so CT comes out in HU. nibabel is not used here; it only supplies real
NIfTI files to the tests. NumPy's own reader handles `.npy` (spacing 1 mm, no orientation).

Every file is checked before its voxels are read. It must be a regular file (a folder must be one DICOM
series), and its header must describe one value per voxel on a 3D grid (a trailing axis of length 1 is
dropped) of at most MAX_VOLUME_VOXELS voxels. A NIfTI file must also hold all the voxel data its header
declares, because ITK's NIfTI reader fills a truncated file with zeros without saying so. A file that fails
any check raises `ImageError`: the message names the file and says what was expected.

Arrays are in (z, y, x) order (depth, height, width), as `SimpleITK.GetArrayFromImage` returns them, and
`Volume.spacing` follows that order. `origin` and `direction` are physical (LPS) coordinates exactly as ITK
gives them (x, y, z), so they convert back to SimpleITK unchanged.

The NIfTI C library inside ITK replaces NaN and ±inf voxels of a float NIfTI file by 0 (nibabel keeps them).
NaN in other formats is kept, and `medbench.preprocessing.volume` handles it.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from medbench.data.dicom import is_dicom
from medbench.errors import DatasetError, ImageError, shown

if TYPE_CHECKING:
    import SimpleITK as sitk

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_VOLUME_VOXELS",
    "RESIZE_MODES",
    "VOLUME_SUFFIXES",
    "Volume",
    "check_volume_settings",
    "is_volume_path",
    "read_volume",
]

MAX_VOLUME_VOXELS = 512**3
"""The most voxels medbench reads from one volume (512 MiB as float32): a large CT series is 512×512×1000 or
less. A few-KB header that claims more is refused before any voxel is read."""
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".npy")
"""File name endings `read_volume` reads (case-insensitive); a folder is read as a DICOM series."""
RESIZE_MODES = ("pad_crop", "resample")
"""How a volume is fitted to a stored shape (`medbench.preprocessing.volume`): centre pad/crop, or linear
interpolation. Defined here so that a `DatasetSpec` can check its `volume_resize` without the preprocessing."""

_NIFTI = ("NIfTI", "NiftiImageIO")
_META = ("MetaImage", "MetaImageIO")
_FORMATS = {".nii": _NIFTI, ".nii.gz": _NIFTI, ".mha": _META, ".mhd": _META}
_EXPECTED = (
    "a NIfTI-1 (.nii, .nii.gz), MetaImage (.mha, .mhd) or NumPy (.npy) file, or a folder holding one DICOM series"
)
_CHUNK = 2**20
_SHOWN_UIDS = 4
_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class Volume:
    """One 3D scalar volume and where it lies in the patient.

    Attributes:
        voxels: float32 (depth, height, width), i.e. (z, y, x); read-only. Exact for the 8- and 16-bit
            integers that CT, MR and label files store; wider integers and float64 are rounded to float32.
        spacing: Voxel size in mm along (z, y, x), the array's axis order.
        origin: Physical position (x, y, z, mm, LPS) of the centre of voxel [0, 0, 0], as ITK gives it.
        direction: Row-major 3×3 matrix. Column j is the physical direction of ITK index axis j, and ITK
            index axis 0 is the array's last axis (x).
        source: The file or folder it was read from ("" when built in memory).

    Equality is identity (eq=False): comparing arrays element-wise has no single truth value.
    """

    voxels: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = _IDENTITY
    source: str = ""

    def __post_init__(self) -> None:
        voxels = np.array(self.voxels, dtype=np.float32, order="C", copy=None)
        if voxels.ndim != 3 or voxels.size == 0:
            raise ValueError(f"Volume voxels: shape {voxels.shape}; expected a non-empty (depth, height, width) array")
        if voxels.flags.writeable and voxels is self.voxels:
            voxels = voxels.copy()  # never freeze the caller's own array
        voxels.flags.writeable = False
        object.__setattr__(self, "voxels", voxels)
        object.__setattr__(self, "spacing", _floats("spacing", self.spacing, 3, positive=True))
        object.__setattr__(self, "origin", _floats("origin", self.origin, 3))
        object.__setattr__(self, "direction", _floats("direction", self.direction, 9))
        object.__setattr__(self, "source", str(self.source))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(depth, height, width) in voxels."""
        depth, height, width = self.voxels.shape
        return depth, height, width


def _floats(name: str, values: object, count: int, *, positive: bool = False) -> tuple[float, ...]:
    try:
        numbers = tuple(float(value) for value in values)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != count or not all(math.isfinite(n) and (n > 0 or not positive) for n in numbers):
        kind = "positive finite" if positive else "finite"
        raise ValueError(f"Volume {name} {shown(values)}: expected {count} {kind} numbers")
    return numbers


def check_volume_settings(
    spacing: object, window: object, resize: object, where: str
) -> tuple[tuple[float, float, float] | None, tuple[float, float] | None]:
    """A dataset's volume preprocessing settings checked: (spacing, window) as floats, or a `DatasetError`
    naming `where` and the field. `resize` must be one of RESIZE_MODES."""
    numbers = None if spacing is None else _finite_numbers(spacing, 3)
    if spacing is not None and (numbers is None or min(numbers) <= 0):
        raise DatasetError(
            f"{where}: volume_spacing {shown(spacing)}; expected 3 voxel sizes (z, y, x) in mm, each > 0"
        )
    bounds = None if window is None else _finite_numbers(window, 2)
    if window is not None and (bounds is None or not bounds[0] < bounds[1]):
        raise DatasetError(
            f"{where}: volume_window {shown(window)}; expected (low, high) intensities with low < high, e.g. "
            "(-1000, 400) HU for CT"
        )
    if resize not in RESIZE_MODES:
        raise DatasetError(f"{where}: volume_resize {shown(resize)}; expected one of {', '.join(RESIZE_MODES)}")
    return (
        None if numbers is None else (numbers[0], numbers[1], numbers[2]),
        None if bounds is None else (bounds[0], bounds[1]),
    )


def _finite_numbers(values: object, count: int) -> tuple[float, ...] | None:
    """`values` as `count` finite floats, or None when they are not that (booleans and strings are not numbers)."""
    if isinstance(values, str | bytes) or not isinstance(values, tuple | list):
        return None
    if len(values) != count or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return None
    numbers = tuple(float(v) for v in values)
    return numbers if all(math.isfinite(n) for n in numbers) else None


def is_volume_path(path: str | os.PathLike[str]) -> bool:
    """Whether `read_volume` would try `path`: its name ends in a VOLUME_SUFFIXES suffix, or it is a folder
    (which may hold a DICOM series). Only a folder check touches the file system."""
    return _suffix(path) is not None or Path(path).is_dir()


def read_volume(path: str | os.PathLike[str]) -> Volume:
    """Read a volume file (.nii, .nii.gz, .mha, .mhd with its data file, .npy) or a DICOM series folder.

    Raises `ImageError` (naming the file, saying what was expected) for a missing, truncated, corrupt or
    oversized file, a file that is not a regular file, an unknown suffix, and an image that is not 3D
    with one value per voxel.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImageError(f"does not exist; expected {_EXPECTED}", file=path) from None
    except OSError as error:
        raise ImageError(f"cannot be opened ({error.strerror}); expected {_EXPECTED}", file=path) from None
    if stat.S_ISDIR(mode):
        return _read_dicom_series(path)
    if not stat.S_ISREG(mode):
        raise ImageError(f"is not a regular file (a device, pipe or socket); expected {_EXPECTED}", file=path)
    suffix = _suffix(path)
    if suffix is None:
        raise ImageError(f"has an unknown suffix; expected {_EXPECTED}", file=path)
    if suffix == ".npy":
        return _read_npy(path)
    return _read_itk_file(path, suffix)


def _suffix(path: str | os.PathLike[str]) -> str | None:
    name = os.fspath(path).lower()
    return next((suffix for suffix in VOLUME_SUFFIXES if name.endswith(suffix)), None)


def _read_npy(path: Path) -> Volume:
    """A 3D numeric .npy array; its header (shape, dtype) is checked before any voxel is read."""
    expected = "expected a complete .npy file of a 3D array"
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(handle)
    except (ValueError, OSError, EOFError) as error:
        raise ImageError(f"is not a readable NumPy array ({_one_line(error)}); {expected}", file=path) from None
    if len(shape) != 3:
        raise ImageError(f"holds an array of shape {shape}; expected a 3D (depth, height, width) array", file=path)
    if dtype.kind not in "biuf":
        raise ImageError(f"holds {dtype} values; expected a numeric (boolean, integer or float) array", file=path)
    _check_voxel_count(path, shape[::-1], 1)
    if math.prod(shape) == 0:
        raise ImageError(f"holds an empty array of shape {shape}; expected voxels", file=path)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ImageError(f"is not a readable NumPy array ({_one_line(error)}); {expected}", file=path) from None
    voxels = np.array(array, dtype=np.float32)
    voxels.flags.writeable = False  # a fresh array: Volume keeps it without a copy
    return Volume(voxels, (1.0, 1.0, 1.0), source=str(path))


def _read_itk_file(path: Path, suffix: str) -> Volume:
    """A NIfTI or MetaImage file through SimpleITK, with its header checked before its voxels are read."""
    import SimpleITK as sitk

    kind, image_io = _FORMATS[suffix]
    expected = f"a complete {kind} file of a 3D volume"
    if kind == _NIFTI[0] and _nifti_header_size(path) == 540:
        raise ImageError(
            "is a NIfTI-2 file, which SimpleITK does not read; expected NIfTI-1 (nibabel converts it: "
            "nibabel.save(nibabel.Nifti1Image.from_image(nibabel.load(path)), 'volume.nii.gz'))",
            file=path,
        )
    if suffix == ".mhd":
        _check_meta_data_file(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO(image_io)
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise ImageError(
            f"is not a readable {kind} file ({_itk_reason(error)}); expected {expected}", file=path
        ) from None
    size, components = tuple(reader.GetSize()), reader.GetNumberOfComponents()
    _check_voxel_count(path, size, components)
    dimensions = _volume_dimensions(path, size, components)
    if kind == _NIFTI[0]:
        _check_nifti_complete(path)
    reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise ImageError(
            f"cannot be read ({_itk_reason(error)}); expected {expected} (is its voxel data truncated?)", file=path
        ) from None
    return _volume_from_image(image, dimensions, path)


def _read_dicom_series(folder: Path) -> Volume:
    """The one DICOM series in `folder` (not its subfolders), Rescale Slope/Intercept applied (CT in HU)."""
    import SimpleITK as sitk

    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise ImageError(
            "is a folder that holds no DICOM series; expected a folder of the DICOM files (slices) of one series",
            file=folder,
        )
    if len(series) > 1:
        named = ", ".join(series[:_SHOWN_UIDS]) + (f", … ({len(series)} in all)" if len(series) > _SHOWN_UIDS else "")
        raise ImageError(
            f"holds {len(series)} DICOM series (Series Instance UIDs {named}); expected exactly one series per "
            "folder (move each series into a folder of its own)",
            file=folder,
        )
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series[0])
    _check_no_dropped_slices(folder, names)
    first = sitk.ImageFileReader()
    first.SetFileName(names[0])
    try:
        first.ReadImageInformation()
    except RuntimeError as error:
        raise ImageError(
            f"holds a DICOM file that cannot be read ({Path(names[0]).name}: {_itk_reason(error)}); expected complete "
            "DICOM files",
            file=folder,
        ) from None
    slice_size = tuple(first.GetSize())
    _check_voxel_count(folder, (*slice_size[:2], math.prod(slice_size[2:]) * len(names)), first.GetNumberOfComponents())
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise ImageError(
            f"holds DICOM series {series[0]} of {len(names)} file(s) that cannot be read as one volume "
            f"({_itk_reason(error)}); expected complete slices of equal size",
            file=folder,
        ) from None
    size, components = tuple(image.GetSize()), image.GetNumberOfComponentsPerPixel()
    return _volume_from_image(image, _volume_dimensions(folder, size, components), folder)


def _check_no_dropped_slices(folder: Path, names: tuple[str, ...]) -> None:
    """Refuse a series when a DICOM file beside it is in no series: GDCM skips a file it cannot parse (e.g. a
    truncated slice) without a word, and the volume would silently miss that slice."""
    series = {os.path.realpath(name) for name in names}
    dropped = sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_file() and os.path.realpath(entry.path) not in series and is_dicom(entry.path)
    )
    if dropped:
        raise ImageError(
            f"holds {len(dropped)} DICOM file(s) that cannot be parsed (e.g. {shown(dropped[0])}) beside the "
            f"{len(names)} of its series; expected complete DICOM files (is a slice truncated?)",
            file=folder,
        )


def _check_voxel_count(path: Path, size: tuple[int, ...], components: int) -> None:
    """Refuse a header whose voxel count (x × y × z × … × components) is over MAX_VOLUME_VOXELS."""
    count = math.prod(size) * components
    if count > MAX_VOLUME_VOXELS:
        raise ImageError(
            f"declares {_size_text(size)} voxels{_components_text(components)} = {count:,} values; expected at most "
            f"{MAX_VOLUME_VOXELS:,} (MAX_VOLUME_VOXELS = 512³), so that one file cannot exhaust memory",
            file=path,
        )


def _volume_dimensions(path: Path, size: tuple[int, ...], components: int) -> tuple[int, int, int]:
    """The (x, y, z) size of a scalar image that is 3D once trailing axes of length 1 are dropped."""
    if components != 1:
        raise ImageError(
            f"has {components} components per voxel (a vector or colour image) of size {_size_text(size)}; expected "
            "one value per voxel",
            file=path,
        )
    kept = list(size)
    while len(kept) > 3 and kept[-1] == 1:
        kept.pop()
    if len(kept) != 3:
        what = "2D image" if len(size) < 3 else f"{len(size)}D image (e.g. a time series)"
        raise ImageError(
            f"is a {what} of size {_size_text(size)}; expected a 3D volume (x×y×z, a 4th axis of length 1 at most)",
            file=path,
        )
    if 0 in kept:
        raise ImageError(f"has size {_size_text(size)}; expected at least one voxel along each axis", file=path)
    return kept[0], kept[1], kept[2]


def _volume_from_image(image: sitk.Image, dimensions: tuple[int, int, int], path: Path) -> Volume:
    """The Volume of a read SimpleITK image whose size is `dimensions` (x, y, z) plus axes of length 1."""
    import SimpleITK as sitk

    voxels = sitk.GetArrayFromImage(image).reshape(dimensions[::-1])
    voxels.flags.writeable = False  # a fresh array: Volume keeps it without a copy
    rank = image.GetDimension()
    spacing = tuple(image.GetSpacing()[:3])
    if not all(math.isfinite(value) and value > 0 for value in spacing):
        raise ImageError(f"has voxel spacing {spacing} (x, y, z); expected positive sizes in mm", file=path)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(rank, rank)[:3, :3]
    origin = tuple(image.GetOrigin()[:3])
    logger.debug("%s: read %s voxels, spacing %s mm (x, y, z)", path, _size_text(dimensions), spacing)
    return Volume(voxels, spacing[::-1], origin, tuple(direction.ravel()), str(path))


def _nifti_header_size(path: Path) -> int | None:
    """The first field of a NIfTI header (348 for NIfTI-1, 540 for NIfTI-2), or None when unreadable."""
    try:
        with _nifti_stream(path) as stream:
            head = stream.read(4)
    except (OSError, EOFError, zlib.error):
        return None
    if len(head) < 4:
        return None
    little, big = int.from_bytes(head, "little"), int.from_bytes(head, "big")
    return little if little in (348, 540) else big if big in (348, 540) else None


def _check_nifti_complete(path: Path) -> None:
    """Refuse a NIfTI-1 file that ends (or whose gzip stream breaks) before the voxel data its header declares."""
    try:
        with _nifti_stream(path) as stream:
            header = stream.read(348)
            if len(header) < 348:
                raise ImageError(
                    f"is {len(header)} bytes long (decompressed); expected a NIfTI-1 header of 348 bytes and voxel "
                    "data",
                    file=path,
                )
            order = "<" if int.from_bytes(header[:4], "little") == 348 else ">"
            dims = np.frombuffer(header, dtype=f"{order}i2", count=8, offset=40)
            bitpix = int(np.frombuffer(header, dtype=f"{order}i2", count=1, offset=72)[0])
            offset = float(np.frombuffer(header, dtype=f"{order}f4", count=1, offset=108)[0])
            rank = int(dims[0])
            needed = max(int(offset), 348) + math.prod(int(n) for n in dims[1 : rank + 1]) * max(bitpix, 0) // 8
            held = 348 + _bytes_until(stream, needed - 348)
    except (OSError, EOFError, zlib.error) as error:
        raise ImageError(
            f"is truncated or corrupt ({_one_line(error)}); expected a complete NIfTI file (was a download "
            "interrupted?)",
            file=path,
        ) from None
    if held < needed:
        raise ImageError(
            f"is truncated: its header declares {needed:,} bytes of header and voxel data, the file holds {held:,}; "
            "expected a complete NIfTI file (was a download interrupted?)",
            file=path,
        )


def _nifti_stream(path: Path) -> BinaryIO:
    """The file opened for reading, through gzip when it starts with the gzip magic number (the caller closes it)."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _bytes_until(stream: BinaryIO, wanted: int) -> int:
    """How many of `wanted` further bytes `stream` yields, read in chunks (at most `wanted` are read)."""
    if not isinstance(stream, gzip.GzipFile):
        return min(wanted, os.fstat(stream.fileno()).st_size - stream.tell())
    held = 0
    while held < wanted:
        chunk = stream.read(min(_CHUNK, wanted - held))
        if not chunk:
            break
        held += len(chunk)
    return held


def _check_meta_data_file(path: Path) -> None:
    """A .mhd header's ElementDataFile (a single file beside it) must be a regular file."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(2**16).decode("latin-1")
    except OSError as error:
        raise ImageError(f"cannot be opened ({error.strerror}); expected a MetaImage header", file=path) from None
    match = re.search(r"^\s*ElementDataFile\s*=\s*(.*?)\s*$", text, flags=re.MULTILINE)
    if match is None or match[1] == "LOCAL" or match[1].startswith("LIST") or "%" in match[1]:
        return  # no data file, data inside the header, or a list of slice files: ITK checks these itself
    data = path.parent / match[1]
    if not data.is_file():
        raise ImageError(
            f"names the data file {shown(match[1])} (ElementDataFile), which "
            f"{'is not a regular file' if data.exists() else 'does not exist'}; expected it beside the .mhd header",
            file=path,
        )


def _itk_reason(error: Exception) -> str:
    """The reason in a SimpleITK exception, without its source location, object addresses or stale errno."""
    lines = str(error).splitlines()
    kept = [line for line in lines if not line.startswith(("Exception thrown in", "Reason:"))] or lines[-1:]
    text = " ".join(" ".join(kept).split())
    text = re.sub(r"(sitk::ERROR|ITK ERROR):\s*", "", text)
    text = re.sub(r"\(0x[0-9a-fA-F]+\)", "", text)
    return text[:200]


def _one_line(error: Exception) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:200]


def _size_text(size: tuple[int, ...]) -> str:
    axes = "xyzt"[: len(size)] if len(size) <= 4 else ""
    return "×".join(str(n) for n in size) + (f" ({'×'.join(axes)})" if axes else "")


def _components_text(components: int) -> str:
    return f" × {components} components" if components != 1 else ""
