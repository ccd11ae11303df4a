"""Evaluation: labelled synthetic worlds to judge detection against."""
