"""Developer tools: mutation score, calibration across seeds, power against the peer."""
