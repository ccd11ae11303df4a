"""Evaluation: labelled synthetic worlds (lab and field), the day-by-day walk that judges
detection on them, and the scoring of its alarms."""
