"""mkdata.assets_manifest."""
