"""Baselines written the classic tutorial's way, so fastdqn's figures have a fixed point to compare with."""
