"""Pure maths: features, detectors, isolation forest, calibration. No I/O, no settings, no DB."""
