"""Hessian sensitivity (HAWQ eigenvalues, HAWQ-V2 traces, ZeroQ KL): filled by the sensitivity/allocation issue."""
