"""mkdata.scenes."""
