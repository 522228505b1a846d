"""Red teaming: adversarial callers run through the simulation engine, graded against OWASP's list.

* :mod:`.library`: the attacks (``attacks.yaml``), each with its category, its OWASP Top 10 for LLM
  Applications 2025 ids, the caller's lines and its grading;
* :mod:`.mutate`: variants of an attack (base64, ROT13, spaced letters, leetspeak, translations, and
  LLM-written paraphrases when an endpoint is configured);
* :mod:`.build`: attacks as scripted scenarios with checks, canaries included, and their scorer;
* :mod:`.run`: :func:`run_redteam`, the attacks through :func:`~convoscope.simulate.runner.run_suite`;
* :mod:`.report`: broke / held / errored per category and OWASP id, with the lines of every break.

``convoscope redteam --agent NAME`` is the command-line front (docs/redteam.md).
"""
