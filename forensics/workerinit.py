"""Imported once by the fork server that forks a local cluster's worker processes
(:func:`forensics.parallel.client_for`): the task modules are imported and their compiled
kernels loaded from numba's cache here, once, and every worker forked afterwards starts with
them in memory instead of paying for both itself. Importing it anywhere else just warms that
process."""
from forensics.parallel import warm_worker

#: what warming the fork server cost (seconds)
TIMINGS = warm_worker()
