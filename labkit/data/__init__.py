"""Data: bundled sample photos, degradations, datasets, patching and paired augmentation.

- photos: :mod:`~labkit.data.sample`;
- degradations: :mod:`~labkit.data.degrade` (MATLAB bicubic resize, mod-crop, grayscale),
  :mod:`~labkit.data.masks` (inpainting masks and inputs), :mod:`~labkit.data.flare_synth` (synthetic flare),
  :mod:`~labkit.data.noise_blur` (camera noise, motion blur);
- datasets: :mod:`~labkit.data.pairing` (generic paired datasets and the crop / augment helpers they share),
  :mod:`~labkit.data.splitting` (seeded index splits), one module per dataset family (layouts in data/README.md):
  :mod:`~labkit.data.sr` (HR folders, DIV2K, SR benchmarks), :mod:`~labkit.data.dacon_sr`,
  :mod:`~labkit.data.flare` (LG flare contest, Flare7K), :mod:`~labkit.data.sidd`, :mod:`~labkit.data.gopro`,
  :mod:`~labkit.data.inpainting` (bundled photos, DACON inpainting), and :mod:`~labkit.data.streaming`
  (chunked SR folders);
- patches: :mod:`~labkit.data.tiling` (inference tiles and stitching), :mod:`~labkit.data.patch_select`
  (training patch selection), :mod:`~labkit.data.patch_export` (patch files on disk);
- augmentation: :mod:`~labkit.data.augment`.
"""
