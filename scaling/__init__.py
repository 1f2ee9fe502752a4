"""Compound scaling of a found network (EfficientNet); see the scaling issue."""
