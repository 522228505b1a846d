"""The review queue: calls queued for people by rule, their labels, and the judges' calibration.

``rules`` decides which (call, metric) pairs deserve a person's look (failures, judges that disagreed
with themselves, a seeded random sample per agent and day); ``service`` fills the queue, hands calls to
reviewers, keeps labels and exports them; ``calibration`` measures each metric's agreement with people
(Cohen's kappa). The tables live in the metadata store (``store.reviews_meta``); the API, the web UI and
the CLI are thin layers over ``service``.
"""
