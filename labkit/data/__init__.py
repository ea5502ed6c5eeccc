"""Data: bundled sample photos, degradations, datasets, patching and paired augmentation."""
