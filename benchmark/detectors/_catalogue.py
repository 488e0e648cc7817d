"""Imports every module that registers detectors (filled as detectors are added)."""
