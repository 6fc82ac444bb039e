"""Checkpoints: save/load round trips and resume are bit-exact; malicious or corrupt files are refused
(``expect``)."""
