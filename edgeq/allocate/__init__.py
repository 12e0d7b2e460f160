"""Bit allocation: HAWQ-V3's integer linear program over a Sensitivity table, and its Pareto frontier."""
from edgeq.allocate.ilp import Allocation, Budget, Costs, InfeasibleBudget, LatencyTable, costs, ilp
from edgeq.allocate.pareto import draw, frontier, plot

__all__ = ["Allocation", "Budget", "Costs", "InfeasibleBudget", "LatencyTable", "costs", "draw", "frontier", "ilp", "plot"]
