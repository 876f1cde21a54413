"""Data sets as device-resident uint8 tensors (CIFAR-10/100, ImageNet16-120) and NB201's splits; CIFAR downloads;
image folders (ImageNet) decoded per batch."""

from search_spaces.data.datasets import (
    DATASETS,
    FOLDER_DATASETS,
    DatasetSpec,
    FolderDatasetSpec,
    check_dataset_files,
    dataset_spec,
    load_split,
    load_splits,
    prepare_dataset,
    resolve_data_root,
)
from search_spaces.data.device import DeviceDataset, random_crop_flip
from search_spaces.data.errors import DataCheckError
from search_spaces.data.image_folder import ImageFolderDataset, ImageReadError, TooManyUnreadableImages
from search_spaces.data.safe_pickle import PickleFileError, load_pickle, scan_pickle

__all__ = ["DeviceDataset", "random_crop_flip", "load_split", "load_splits", "DATASETS", "DatasetSpec",
           "dataset_spec", "PickleFileError", "load_pickle", "prepare_dataset", "resolve_data_root",
           "FOLDER_DATASETS", "FolderDatasetSpec", "ImageFolderDataset", "ImageReadError", "DataCheckError",
           "TooManyUnreadableImages", "check_dataset_files", "scan_pickle"]
