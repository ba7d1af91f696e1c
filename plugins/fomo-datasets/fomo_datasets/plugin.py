"""Registers the dataset components for data on disk."""

from fomo_host.api import hookimpl

from .caption_table import CaptionTableParams, build_caption_table
from .fomo_in_flux import FomoInFluxParams, build_fomo_in_flux
from .image_folder import ImageFolderParams, build_image_folder
from .webdataset_pool import WebDatasetParams, build_webdataset


@hookimpl
def register_datasets(register):
    register(name="image-folder", factory=build_image_folder, params=ImageFolderParams)
    register(name="caption-table", factory=build_caption_table, params=CaptionTableParams)
    register(name="webdataset", factory=build_webdataset, params=WebDatasetParams)
    register(name="fomo-in-flux", factory=build_fomo_in_flux, params=FomoInFluxParams)
