"""mkdata.benchmark.detectors."""
