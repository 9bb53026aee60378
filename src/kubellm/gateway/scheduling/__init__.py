"""Pure routing: filters -> weighted scorers -> one picker, per routing profile.

Nothing here does I/O; the proxy builds a :class:`RoutingRequest`, hands the
endpoints of a pool to :meth:`Scheduler.pick` and gets one endpoint back.
"""
