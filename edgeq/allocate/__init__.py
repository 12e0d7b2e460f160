"""Bit allocation by integer linear programming (HAWQ-V3): filled by the sensitivity/allocation issue."""
