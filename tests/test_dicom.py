"""DICOM images on real files: pydicom-data's CR chest PA (RG1, MONOCHROME1, windowed, also JPEG 2000) and
pydicom's own test files, plus files derived from them and written with pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medbench.data.images import MAX_IMAGE_PIXELS, decode_plain_image, read_image, verify_images
from medbench.errors import ImageError
from medbench.preprocessing.cache import build_cache
from medbench.preprocessing.params import PreprocessParams


def _testdata(name: str) -> Path:
    return Path(get_testdata_file(name))


def _gray(path: Path) -> np.ndarray:
    image = read_image(path)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert (image[:, :, 0] == image[:, :, 1]).all() and (image[:, :, 1] == image[:, :, 2]).all()
    return image[:, :, 0].astype(np.float64)


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR), written out here independently, onto 0..255."""
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    out = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.rint(np.where(values <= low, 0, np.where(values > high, 255, out)))


def test_a_monochrome1_chest_radiograph_is_windowed_and_inverted_so_bone_is_bright() -> None:
    path = _testdata("RG1_UNCR.dcm")
    dataset = pydicom.dcmread(path)
    assert (dataset.PhotometricInterpretation, dataset.Modality, dataset.ViewPosition) == ("MONOCHROME1", "CR", "PA")
    gray = _gray(path)
    assert gray.shape == (dataset.Rows, dataset.Columns)
    expected = 255 - _linear_window(dataset.pixel_array.astype(np.float64), 15000.0, 30000.0)
    assert np.abs(gray - expected).max() <= 1
    rows, columns = gray.shape
    spine = gray[rows // 3 : rows // 2, columns // 2 - 20 : columns // 2 + 20].mean()
    right_lung = gray[rows // 3 : rows // 2, columns // 4 - 40 : columns // 4 + 40].mean()
    assert spine > right_lung + 20, "the mediastinum is brighter than the lung field, as on any viewer"


def test_the_jpeg_2000_copy_of_the_radiograph_decodes_to_the_same_pixels() -> None:
    np.testing.assert_array_equal(read_image(_testdata("RG1_J2KR.dcm")), read_image(_testdata("RG1_UNCR.dcm")))


def test_ct_values_go_through_rescale_slope_and_intercept_before_the_window(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(_testdata("CT_small.dcm"))
    assert (float(dataset.RescaleSlope), float(dataset.RescaleIntercept)) == (1.0, -1024.0)
    dataset.WindowCenter, dataset.WindowWidth = 40, 400  # a soft-tissue window in HU
    path = tmp_path / "ct-window.dcm"
    dataset.save_as(path)
    hounsfield = dataset.pixel_array.astype(np.float64) * 1.0 - 1024.0
    np.testing.assert_array_equal(_gray(path), _linear_window(hounsfield, 40.0, 400.0))


def test_without_a_window_the_values_are_scaled_from_their_own_range() -> None:
    path = _testdata("CT_small.dcm")
    hounsfield = pydicom.dcmread(path).pixel_array.astype(np.float64) - 1024.0
    low, high = hounsfield.min(), hounsfield.max()
    np.testing.assert_array_equal(_gray(path), np.rint((hounsfield - low) * 255 / (high - low)))


def test_an_rgb_dicom_keeps_its_colours() -> None:
    path = _testdata("SC_rgb.dcm")
    np.testing.assert_array_equal(read_image(path), pydicom.dcmread(path).pixel_array)


def test_a_multi_frame_file_is_refused_naming_its_frames() -> None:
    path = _testdata("emri_small.dcm")
    with pytest.raises(ImageError) as error:
        read_image(path)
    assert str(error.value).startswith(f"{path}: has 10 frames; expected a single-frame image")


def test_a_dicom_claiming_more_pixels_than_the_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(_testdata("MR_small.dcm"))
    dataset.Rows = dataset.Columns = 9000  # the pixel data stays 64 × 64: nothing is decoded
    path = tmp_path / "bomb.dcm"
    dataset.save_as(path)
    with pytest.raises(ImageError, match=r"bomb.dcm: is too large to decode safely \(9000×9000 = 81.0 megapixels\)"):
        read_image(path)
    assert 9000 * 9000 > MAX_IMAGE_PIXELS


def test_damaged_compressed_pixel_data_names_the_transfer_syntax(tmp_path: Path) -> None:
    data = bytearray(_testdata("RG1_J2KR.dcm").read_bytes())
    start = data.index(b"\xff\x4f\xff\x51")  # the JPEG 2000 codestream (SOC, SIZ)
    data[start : start + 64] = bytes(64)
    path = tmp_path / "damaged-j2k.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as error:
        read_image(path)
    message = str(error.value)
    assert message.startswith(f"{path}: cannot decode its pixel data with transfer syntax JPEG 2000 Image Compression")
    assert "(1.2.840.10008.1.2.4.90)" in message
    assert [reason for _, reason in verify_images([path, _testdata("MR_small.dcm")])] == [message.split(": ", 1)[1]]


def test_a_file_with_the_dicom_marker_but_a_broken_header_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.dcm"
    path.write_bytes(_testdata("MR_small.dcm").read_bytes()[:200])
    with pytest.raises(ImageError, match="cut.dcm: "):
        read_image(path)


def test_dicom_sources_build_a_preprocessing_cache(tmp_path: Path) -> None:
    sources = [_testdata("MR_small.dcm"), _testdata("CT_small.dcm")]
    assert decode_plain_image(sources[0]) is None, "DICOM takes the full decoder, never the OpenCV fast path"
    cache = build_cache(
        [str(path) for path in sources], PreprocessParams(32), tmp_path / "cache", workers=1, progress=False
    )
    assert not cache.failed
    images = cache.images(np.arange(2))
    assert images.shape == (2, 32, 32, 1) and images.max() > 100


@pytest.mark.slow
def test_medbench_predict_reads_a_dicom_radiograph(tmp_path: Path) -> None:
    """`medbench predict` of a saved run (tests/data/legacy-run) on the real CR chest PA, as a real process."""
    import shutil

    from cli_process import run_medbench

    from medbench.settings import Settings

    legacy = Path(__file__).parent / "data" / "legacy-run"
    settings = Settings(tmp_path, tmp_path / "data", tmp_path / "models", tmp_path / "logs", tmp_path / "weights")
    shutil.copytree(legacy, settings.models_dir)
    (run,) = [path.name for path in settings.models_dir.glob("*/*") if path.is_dir()]
    image = tmp_path / "chest.dcm"
    shutil.copyfile(_testdata("RG1_UNCR.dcm"), image)
    done = run_medbench(["predict", run, str(image), "--out", str(tmp_path / "out.csv")], settings)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith(str(image))
    probabilities = [float(value) for value in lines[1].split(",")[1:]]
    assert probabilities and all(0.0 <= value <= 1.0 for value in probabilities)
