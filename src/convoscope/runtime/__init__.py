"""What a capability's jobs run on, below every capability.

A capability (recording fetch, audio analysis, evaluators, trace assembly, and later simulation, alerts
and schedules) is one package holding its logic, its planner and its job handlers. None of them may reach
for the whole server: each is given a :class:`~convoscope.runtime.context.JobContext`, the narrow set of
things a job may use (the stores, the blob store, the settings, and the two ways to hand work on). The
server composes the capabilities; the CLI opens :class:`~convoscope.runtime.stores.Stores` alone when it
only reads or writes calls.
"""
