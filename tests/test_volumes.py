"""Volumes: reading real and synthetic files in every format, refusing hostile ones, and the stored uint8 voxels."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from nibabel.testing import data_path
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from medbench.data.volumes import MAX_VOLUME_VOXELS, VOLUME_SUFFIXES, Volume, is_volume_path, read_volume
from medbench.errors import ConfigError, ImageError
from medbench.preprocessing.volume import (
    VolumeParams,
    pad_or_crop,
    preprocess_volume,
    resample_to_shape,
    resample_to_spacing,
    window_to_uint8,
)

NIBABEL_DATA = Path(data_path)
REAL_3D = ["anatomical.nii", "standard.nii.gz", "reoriented_anat_moved.nii", "resampled_anat_moved.nii"]
REAL_4D = ["example4d.nii.gz", "functional.nii"]
SPACING = (2.5, 0.75, 0.5)
"""(z, y, x) mm: anisotropic and different on every axis, so an axis-order mistake shows."""


def nibabel_file(name: str) -> Path:
    path = NIBABEL_DATA / name
    if not path.is_file():
        pytest.skip(f"nibabel does not ship {name} in this version")
    return path


def synthetic(dtype: type = np.int16) -> np.ndarray:
    """A (6, 7, 9) volume whose every voxel differs (no symmetry hides a transposed axis)."""
    return (np.arange(6 * 7 * 9).reshape(6, 7, 9) * 3 - 400).astype(dtype)


def write_sitk(voxels: np.ndarray, path: Path, spacing: tuple[float, float, float] = SPACING) -> Path:
    image = sitk.GetImageFromArray(voxels)
    image.SetSpacing(spacing[::-1])
    image.SetOrigin((10.0, -20.0, 30.0))
    sitk.WriteImage(image, str(path))
    return path


def write_dicom_series(folder: Path, stored: np.ndarray, spacing: tuple[float, float, float], intercept: float) -> str:
    """One CT series, a file per slice, uint16 stored values with Rescale Intercept `intercept`; its UID."""
    folder.mkdir(parents=True, exist_ok=True)
    series, study = generate_uid(), generate_uid()
    for index, plane in enumerate(stored):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset = Dataset()
        dataset.file_meta = meta
        dataset.SOPClassUID, dataset.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        dataset.Modality, dataset.PatientID, dataset.InstanceNumber = "CT", "anonymous", index + 1
        dataset.ImagePositionPatient = [-5.0, 7.0, 100.0 + index * spacing[0]]
        dataset.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        dataset.PixelSpacing = [spacing[1], spacing[2]]
        dataset.SliceThickness = spacing[0]
        dataset.Rows, dataset.Columns = plane.shape
        dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
        dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 0
        dataset.RescaleIntercept, dataset.RescaleSlope = intercept, 1
        dataset.PixelData = plane.astype("<u2").tobytes()
        dataset.save_as(folder / f"slice{index:03d}.dcm", enforce_file_format=True)
    return series


def refused(path: Path, *phrases: str) -> str:
    """The ImageError message of reading `path`, checked to name the file and hold each phrase."""
    with pytest.raises(ImageError) as caught:
        read_volume(path)
    message = str(caught.value)
    assert str(path) in message
    assert "Exception thrown in SimpleITK" not in message and ".cxx" not in message
    for phrase in phrases:
        assert phrase in message
    return message


# Reading: real NIfTI files shipped with nibabel


@pytest.mark.parametrize("name", REAL_3D)
def test_real_nifti_volumes_equal_nibabel_after_transposing(name: str) -> None:
    path = nibabel_file(name)
    expected = nibabel.load(path)
    volume = read_volume(path)
    assert volume.voxels.dtype == np.float32 and volume.voxels.shape == expected.shape[::-1]
    voxels = expected.get_fdata().transpose(2, 1, 0)
    np.testing.assert_allclose(volume.voxels, np.nan_to_num(voxels, nan=0.0, posinf=0.0, neginf=0.0), rtol=1e-6)
    np.testing.assert_allclose(volume.spacing, expected.header.get_zooms()[:3][::-1], rtol=1e-6)
    assert volume.source == str(path)


def test_itks_nifti_reader_gives_nan_voxels_as_zero() -> None:
    path = nibabel_file("resampled_anat_moved.nii")
    nan = np.isnan(nibabel.load(path).get_fdata().transpose(2, 1, 0))
    voxels = read_volume(path).voxels
    assert nan.sum() > 100 and (voxels[nan] == 0.0).all() and np.isfinite(voxels).all()


def test_real_nifti_orientation_is_itks_lps_form_of_the_affine() -> None:
    path = nibabel_file("anatomical.nii")
    affine = nibabel.load(path).affine
    volume = read_volume(path)
    ras_to_lps = np.diag([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(volume.origin, ras_to_lps @ affine[:3, 3], atol=1e-4)
    rotation = affine[:3, :3] / np.asarray(volume.spacing[::-1])
    np.testing.assert_allclose(np.reshape(volume.direction, (3, 3)), ras_to_lps @ rotation, atol=1e-5)


@pytest.mark.parametrize("name", REAL_4D)
def test_real_4d_nifti_is_refused_naming_its_size(name: str) -> None:
    path = nibabel_file(name)
    size = "×".join(str(n) for n in nibabel.load(path).shape)
    refused(path, "4D image", size, "expected a 3D volume")


def test_nifti2_is_refused_with_a_conversion_hint() -> None:
    refused(nibabel_file("example_nifti2.nii.gz"), "NIfTI-2", "expected NIfTI-1")


# Reading: synthetic files of every format


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".mha", ".mhd"])
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
def test_sitk_written_volumes_read_back_exactly(tmp_path: Path, suffix: str, dtype: type) -> None:
    voxels = synthetic(dtype)
    volume = read_volume(write_sitk(voxels, tmp_path / f"volume{suffix}"))
    assert volume.voxels.dtype == np.float32 and volume.shape == voxels.shape
    np.testing.assert_array_equal(volume.voxels, voxels.astype(np.float32))
    np.testing.assert_allclose(volume.spacing, SPACING, rtol=1e-6)
    np.testing.assert_allclose(volume.origin, (10.0, -20.0, 30.0), atol=1e-5)
    assert not volume.voxels.flags.writeable


def test_npy_reads_with_unit_spacing(tmp_path: Path) -> None:
    voxels = synthetic(np.float64) / 7.0
    np.save(tmp_path / "volume.npy", voxels)
    volume = read_volume(tmp_path / "volume.npy")
    np.testing.assert_array_equal(volume.voxels, voxels.astype(np.float32))
    assert volume.spacing == (1.0, 1.0, 1.0) and volume.origin == (0.0, 0.0, 0.0)


def test_a_4d_image_whose_last_axis_has_length_1_is_read_as_3d(tmp_path: Path) -> None:
    voxels = synthetic()
    image = sitk.GetImageFromArray(voxels[np.newaxis], isVector=False)
    image.SetSpacing((*SPACING[::-1], 3.0))
    sitk.WriteImage(image, str(tmp_path / "single.mha"))
    volume = read_volume(tmp_path / "single.mha")
    np.testing.assert_array_equal(volume.voxels, voxels)
    np.testing.assert_allclose(volume.spacing, SPACING)


def test_a_vector_image_is_refused_naming_its_components(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray(np.zeros((4, 5, 6, 3), np.uint8), isVector=True)
    sitk.WriteImage(image, str(tmp_path / "rgb.mha"))
    refused(tmp_path / "rgb.mha", "3 components", "6×5×4", "one value per voxel")


def test_a_2d_image_is_refused(tmp_path: Path) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((5, 6), np.uint8)), str(tmp_path / "plane.mha"))
    refused(tmp_path / "plane.mha", "2D image", "6×5")


def test_dicom_series_reads_in_hounsfield_units_with_its_spacing(tmp_path: Path) -> None:
    stored = (np.arange(5 * 6 * 7).reshape(5, 6, 7) * 37 % 3000).astype(np.uint16)
    write_dicom_series(tmp_path / "ct", stored, (2.5, 0.7, 0.8), intercept=-1024.0)
    (tmp_path / "ct" / "notes.txt").write_text("not DICOM")
    volume = read_volume(tmp_path / "ct")
    np.testing.assert_array_equal(volume.voxels, stored.astype(np.float32) - 1024.0)
    np.testing.assert_allclose(volume.spacing, (2.5, 0.7, 0.8), rtol=1e-6)
    np.testing.assert_allclose(volume.origin, (-5.0, 7.0, 100.0))
    assert volume.source == str(tmp_path / "ct")


def test_a_folder_with_two_series_is_refused_naming_both(tmp_path: Path) -> None:
    stored = np.ones((2, 4, 4), np.uint16)
    first = write_dicom_series(tmp_path / "mixed", stored, (1.0, 1.0, 1.0), 0.0)
    second = write_dicom_series(tmp_path / "other", stored, (1.0, 1.0, 1.0), 0.0)
    for index, slice_file in enumerate(sorted((tmp_path / "other").iterdir())):
        slice_file.rename(tmp_path / "mixed" / f"other{index}.dcm")
    refused(tmp_path / "mixed", "2 DICOM series", first, second, "exactly one series")


def test_a_series_with_a_truncated_slice_is_refused(tmp_path: Path) -> None:
    write_dicom_series(tmp_path / "ct", np.ones((4, 8, 8), np.uint16), (1.0, 1.0, 1.0), 0.0)
    damaged = tmp_path / "ct" / "slice002.dcm"
    damaged.write_bytes(damaged.read_bytes()[:-60])
    refused(tmp_path / "ct", "'slice002.dcm'", "cannot be parsed", "3 of its series")


# Reading: hostile inputs


def test_missing_file(tmp_path: Path) -> None:
    refused(tmp_path / "absent.nii.gz", "does not exist", "expected")


def test_truncated_nii_gz_is_refused_not_zero_filled(tmp_path: Path) -> None:
    path = write_sitk(synthetic() + 1000, tmp_path / "volume.nii.gz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    refused(path, "truncated", "complete NIfTI")


def test_truncated_uncompressed_nii_is_refused_not_zero_filled(tmp_path: Path) -> None:
    path = write_sitk(synthetic() + 1000, tmp_path / "volume.nii")
    path.write_bytes(path.read_bytes()[:-100])
    refused(path, "truncated", "complete NIfTI")


def test_corrupt_gzip_stream_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "volume.nii.gz"
    raw = gzip.decompress(write_sitk(synthetic(), path).read_bytes())
    packed = bytearray(gzip.compress(raw))
    packed[len(packed) // 2 : len(packed) // 2 + 16] = bytes(16)
    path.write_bytes(bytes(packed))
    refused(path, "expected")


def test_truncated_mha_is_refused(tmp_path: Path) -> None:
    path = write_sitk(synthetic(), tmp_path / "volume.mha")
    path.write_bytes(path.read_bytes()[:-100])
    refused(path, "cannot be read", "complete MetaImage")


def test_text_file_named_nii(tmp_path: Path) -> None:
    (tmp_path / "notes.nii").write_text("this is not an image\n" * 30)
    refused(tmp_path / "notes.nii", "not a readable NIfTI")


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 4, 5)])
def test_npy_that_is_not_3d(tmp_path: Path, shape: tuple[int, ...]) -> None:
    np.save(tmp_path / "array.npy", np.zeros(shape))
    refused(tmp_path / "array.npy", str(shape), "expected a 3D")


def test_npy_of_objects_and_truncated_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "objects.npy", np.array([[[None]]], dtype=object), allow_pickle=True)
    refused(tmp_path / "objects.npy", "expected")
    path = tmp_path / "short.npy"
    np.save(path, np.zeros((8, 8, 8)))
    path.write_bytes(path.read_bytes()[:-100])
    refused(path, "not a readable NumPy array")


def test_folder_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing here")
    refused(tmp_path / "empty", "no DICOM series")


def test_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "volume.vtk").write_bytes(b"# vtk DataFile Version 3.0\n")
    refused(tmp_path / "volume.vtk", "unknown suffix", ".nii.gz")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_a_named_pipe_is_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.nii")
    refused(tmp_path / "pipe.nii", "not a regular file")


def test_oversize_header_is_refused_before_reading(tmp_path: Path) -> None:
    (tmp_path / "huge.raw").write_bytes(b"\x00" * 64)
    header = "ObjectType = Image\nNDims = 3\nDimSize = 1024 1024 1024\nElementType = MET_SHORT\n"
    (tmp_path / "huge.mhd").write_text(header + "ElementDataFile = huge.raw\n")
    refused(tmp_path / "huge.mhd", "1024×1024×1024", f"{1024**3:,}", f"{MAX_VOLUME_VOXELS:,}")


def test_oversize_npy_header_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": (1024,) * 3})
        handle.write(b"\x00" * 64)
    refused(path, f"{MAX_VOLUME_VOXELS:,}", "1024×1024×1024")


def test_mhd_whose_data_file_is_missing(tmp_path: Path) -> None:
    header = "ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_SHORT\nElementDataFile = gone.raw\n"
    (tmp_path / "volume.mhd").write_text(header)
    refused(tmp_path / "volume.mhd", "'gone.raw'", "does not exist")


def test_volume_suffixes_and_paths(tmp_path: Path) -> None:
    assert ".nii.gz" in VOLUME_SUFFIXES
    assert is_volume_path("scan.NII.GZ") and is_volume_path(Path("a/b.mhd")) and is_volume_path(tmp_path)
    assert not is_volume_path("image.png") and not is_volume_path(tmp_path / "absent-folder")


def test_volume_is_validated_and_read_only() -> None:
    mine = np.zeros((2, 3, 4), np.float32)
    volume = Volume(mine, (1, 2, 3))
    assert volume.spacing == (1.0, 2.0, 3.0) and mine.flags.writeable
    with pytest.raises(ValueError):
        volume.voxels[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="spacing"):
        Volume(mine, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="shape"):
        Volume(np.zeros((3, 4)), (1.0, 1.0, 1.0))


# Preprocessing


def test_resampling_anisotropic_depth_to_isotropic_doubles_it() -> None:
    voxels = np.repeat(np.arange(10, dtype=np.float32), 16).reshape(10, 4, 4)
    volume = Volume(voxels, (2.0, 1.0, 1.0), origin=(0.0, 0.0, 50.0))
    resampled = resample_to_spacing(volume, (1.0, 1.0, 1.0))
    assert resampled.shape == (20, 4, 4) and resampled.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(resampled.origin, (0.0, 0.0, 49.5))
    profile = resampled.voxels[:, 0, 0]
    np.testing.assert_allclose(profile[1:-1], np.arange(18) * 0.5 + 0.25, atol=1e-6)
    assert profile[0] == 0.0 and profile[-1] == 9.0
    assert resample_to_spacing(volume, (3.0, 1.0, 1.0)).shape == (7, 4, 4)  # 10 × 2 / 3 = 6.67 → 7


def test_resampling_to_the_same_spacing_is_the_identity() -> None:
    volume = Volume(synthetic(np.float32), SPACING)
    assert resample_to_spacing(volume, SPACING) is volume


def test_resampling_refuses_an_oversize_result() -> None:
    volume = Volume(np.zeros((64, 64, 64), np.float32), (1.0, 1.0, 1.0), source="tiny.nii")
    with pytest.raises(ImageError, match=r"tiny\.nii.*MAX_VOLUME_VOXELS"):
        resample_to_spacing(volume, (0.1, 0.1, 0.1))


def test_hu_window_maps_low_to_0_high_to_255_and_clips() -> None:
    voxels = np.array([-3000.0, -1000.0, -650.0, 400.0, 2000.0, np.nan], dtype=np.float32)
    gray = window_to_uint8(voxels, (-1000.0, 400.0))
    assert gray.dtype == np.uint8
    assert gray.tolist() == [0, 0, 64, 255, 255, 0]  # -650: 350 / 1400 × 255 = 63.75


def test_window_none_uses_the_own_range_and_a_flat_volume_is_zero() -> None:
    assert window_to_uint8(np.array([5.0, 7.5, 10.0]), None).tolist() == [0, 128, 255]
    assert window_to_uint8(np.full((2, 2, 2), 42.0), None).max() == 0


def test_invalid_window_is_refused() -> None:
    with pytest.raises(ConfigError, match="low < high"):
        window_to_uint8(np.zeros(3), (5.0, 5.0))


def test_pad_or_crop_is_centred_with_the_extra_voxel_at_the_end() -> None:
    voxels = np.arange(2 * 5 * 6).reshape(2, 5, 6)
    result = pad_or_crop(voxels, (5, 3, 6), fill=-1)
    assert result.shape == (5, 3, 6)
    assert (result[0] == -1).all() and (result[3:] == -1).all()  # depth 2 → 5: 1 before, 2 after
    np.testing.assert_array_equal(result[1:3], voxels[:, 1:4, :])  # height 5 → 3: drop 1 before, 1 after
    cropped = pad_or_crop(np.arange(6), (3,), fill=0)
    assert cropped.tolist() == [1, 2, 3]  # 6 → 3: drop 1 before, 2 after
    assert pad_or_crop(np.arange(3), (6,), fill=9).tolist() == [9, 0, 1, 2, 9, 9]


def test_resample_to_shape_matches_voxel_extents() -> None:
    voxels = np.arange(4, dtype=np.float32).reshape(4, 1, 1) * np.ones((4, 2, 2), np.float32)
    result = resample_to_shape(voxels, (8, 2, 2))
    np.testing.assert_allclose(result[:, 0, 0], [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0])


@pytest.mark.parametrize("resize", ["pad_crop", "resample"])
def test_preprocess_volume_is_deterministic_with_the_declared_shape(tmp_path: Path, resize: str) -> None:
    path = write_sitk(synthetic(), tmp_path / "volume.nii.gz")
    params = VolumeParams((8, 16, 12), spacing=(1.0, 1.0, 1.0), window=(-1000.0, 400.0), resize=resize)
    first, second = preprocess_volume(path, params), preprocess_volume(read_volume(path), params)
    assert first.shape == (8, 16, 12, 1) and first.dtype == np.uint8 and first.flags.c_contiguous
    assert first.tobytes() == second.tobytes()


def test_preprocess_volume_pads_with_the_window_low_and_handles_nan() -> None:
    voxels = np.full((2, 2, 2), 400.0, np.float32)
    voxels[0, 0, 0] = np.nan
    result = preprocess_volume(Volume(voxels, (1.0, 1.0, 1.0)), VolumeParams((4, 4, 4), window=(-1000.0, 400.0)))
    assert result[0, 0, 0, 0] == 0 and result[1, 1, 1, 0] == 0 and result[2, 2, 2, 0] == 255
    assert int(result.sum()) == 7 * 255


def test_preprocess_real_nifti_with_its_own_range() -> None:
    path = nibabel_file("anatomical.nii")
    result = preprocess_volume(path, VolumeParams((32, 32, 32), spacing=(2.0, 2.0, 2.0)))
    assert result.shape == (32, 32, 32, 1) and result.max() == 255


def test_volume_params_round_trip_through_json_values() -> None:
    import json

    params = VolumeParams((64, 128, 128), spacing=(1.5, 0.8, 0.8), window=(-1000, 400), resize="resample")
    data = json.loads(json.dumps(params.to_dict()))
    assert VolumeParams.from_dict(data) == params and params.window == (-1000.0, 400.0)
    assert VolumeParams.from_dict({"shape": [4, 4, 4]}) == VolumeParams((4, 4, 4))


@pytest.mark.parametrize(
    ("fields", "phrase"),
    [
        ({"shape": (0, 4, 4)}, "VolumeParams.shape (0, 4, 4): expected 3 whole numbers"),
        ({"shape": (4, 4, 2000)}, "each 1..1024"),
        ({"shape": (4, 4)}, "VolumeParams.shape"),
        ({"shape": (4.0, 4, 4)}, "whole numbers"),
        ({"shape": (4, 4, 4), "spacing": (1.0, -1.0, 1.0)}, "VolumeParams.spacing (1.0, -1.0, 1.0): expected 3 voxel"),
        ({"shape": (4, 4, 4), "window": (400, -1000)}, "VolumeParams.window (400, -1000): expected (low, high)"),
        ({"shape": (4, 4, 4), "window": (0.0, float("inf"))}, "finite"),
        ({"shape": (4, 4, 4), "resize": "zoom"}, "VolumeParams.resize 'zoom': expected one of pad_crop, resample"),
    ],
)
def test_volume_params_refuse_invalid_fields(fields: dict, phrase: str) -> None:
    with pytest.raises(ConfigError) as caught:
        VolumeParams(**fields)
    assert phrase in str(caught.value)


def test_volume_params_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="sizee"):
        VolumeParams.from_dict({"shape": [4, 4, 4], "sizee": 3})
