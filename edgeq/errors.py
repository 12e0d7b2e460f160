"""One error type for every input problem a user can fix: it names the problem and the fix."""
from __future__ import annotations


class EdgeqError(Exception):
    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem}; fix: {fix}")
        self.problem, self.fix = problem, fix
