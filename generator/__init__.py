"""mkdata.generator."""
