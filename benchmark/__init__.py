"""mkdata.benchmark."""
