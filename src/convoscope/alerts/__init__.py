"""Alerts: rules over the stored metrics that fire and resolve, and notifiers that tell people.

"Is something going wrong?" has to reach people where they work within minutes. Rules (:mod:`.rules`)
are evaluated on a schedule in the server and right after each evaluation batch; each change of a rule's
state is an :class:`~.events.AlertEvent`, kept with the calls that caused it and delivered through the
rule's notifiers (:mod:`.notifiers`) as retried jobs, so a receiver that is down delays an alert but never
loses it.
"""
